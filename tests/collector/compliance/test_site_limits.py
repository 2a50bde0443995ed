"""The site limits file: the officer's values merged over the built-in table, each naming
its file, and `collector limits show` printing what is in force. The figures of the
permit below are made up for the tests; they are no regulation's."""

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector.cli.app import app
from collector.compliance.limits import builtin_limits, configured_limits, load_site_limits
from collector.config import load_collector
from iotruntime.configfile import ConfigError
from testbed.processes import run_cli

DAY = date(2026, 11, 30)
PERMIT = """\
regulations:
  - id: Permit 01/GP-TEST
    title: Environmental permit of the test plant
    applies_from: 2026-01-01
    source: made up for the tests
limits:
  - {kind: seawater, parameter: ph, regulation: Permit 01/GP-TEST, clause: Art. 3,
     averaging: sample, min: 7.0, max: 8.5, unit: pH, zone: coastal, source: the permit}
  - {kind: seawater, parameter: nh4, regulation: QCVN 10:2023/BTNMT, clause: Table 2,
     averaging: sample, max: 0.05, unit: mg/L, zone: coastal, source: a test correction}
"""


def site_file(tmp_path: Path, text: str = PERMIT) -> Path:
    path = tmp_path / "site-limits.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def collector_config(tmp_path: Path, site: str | None = "site-limits.yaml") -> Path:
    path = tmp_path / "collector.yaml"
    line = f"site_limits: {site}\n" if site else ""
    path.write_text(f"store: {{kind: sqlite, path: s.sqlite}}\n{line}", encoding="utf-8")
    return path


def test_a_site_limit_adds_to_the_built_in_table_and_names_its_file(tmp_path):
    path = site_file(tmp_path)
    table = load_site_limits(path)
    [ph] = table.in_force("seawater", "ph", DAY, zone="coastal")
    assert (ph.regulation, ph.min, ph.max) == ("Permit 01/GP-TEST", 7.0, 8.5)
    assert table.file_of(ph) == path
    assert table.in_force("seawater", "ph", date(2025, 12, 31), zone="coastal") == []
    [pm10] = table.in_force("air", "pm10", DAY)[:1]
    assert table.file_of(pm10) is None


def test_a_site_entry_with_the_same_key_replaces_the_built_in_one(tmp_path):
    table = load_site_limits(site_file(tmp_path))
    [nh4] = table.in_force("seawater", "nh4", DAY, zone="coastal")
    assert (nh4.max, nh4.source) == (0.05, "a test correction")
    assert len(table.limits) == len(builtin_limits().limits) + 1


def test_a_wrong_site_entry_names_the_file_and_each_key(tmp_path):
    path = site_file(
        tmp_path,
        """\
regulations:
  - {id: Undated rule, title: t, source: s}
limits:
  - {kind: seawater, parameter: ph, regulation: QCVN 99, clause: c, averaging: sample,
     max: 8.5, unit: pH, source: s}
  - {kind: seawater, parameter: do, regulation: Undated rule, clause: c, averaging: sample,
     min: 5, unit: mg/L}
  - {kind: seawater, parameter: do, regulation: Undated rule, clause: c, averaging: sample,
     min: 4, unit: mg/L, source: s}
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_site_limits(path)
    assert str(path) in str(caught.value)
    keys = [key for key, _ in caught.value.problems]
    assert keys == [
        "limits[0].regulation",
        "limits[1].applies_from",
        "limits[1].source",
        "limits[2].applies_from",
        "limits[2]",
    ]
    assert "repeats limits[1]" in dict(caught.value.problems)["limits[2]"]


def test_a_limit_in_a_zone_its_kind_does_not_have_is_refused(tmp_path):
    path = site_file(
        tmp_path,
        "limits:\n  - {kind: seawater, parameter: ph, regulation: QCVN 10:2023/BTNMT, "
        "clause: c, averaging: sample, max: 8.5, unit: pH, zone: special, source: s}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_site_limits(path)
    [(key, what)] = caught.value.problems
    assert key == "limits[0]"
    assert "zone of a seawater limit is one of coastal, nearshore" in what


def test_the_site_limits_path_is_relative_to_the_collector_config(tmp_path):
    site_file(tmp_path)
    config = load_collector(collector_config(tmp_path))
    assert config.site_limits == tmp_path.resolve() / "site-limits.yaml"
    assert configured_limits(config).in_force("seawater", "ph", DAY, zone="coastal")
    assert configured_limits(load_collector(collector_config(tmp_path, None))) is builtin_limits()


def test_limits_show_prints_what_is_in_force_and_from_which_file(tmp_path):
    site = site_file(tmp_path)
    config = collector_config(tmp_path)
    args = ["limits", "show", "-c", str(config), "--kind", "seawater", "--date", str(DAY)]
    result = CliRunner().invoke(app, [*args, "--csv"])
    assert result.exit_code == 0, result.output
    rows = {
        (r["parameter"], r["column/zone"]): r for r in csv.DictReader(io.StringIO(result.output))
    }
    assert (rows["ph", "coastal"]["limit"], rows["ph", "coastal"]["file"]) == ("7-8.5", str(site))
    assert (rows["ph", "nearshore"]["clause"], rows["ph", "nearshore"]["file"]) == (
        "Table 3",
        "built-in",
    )
    assert rows["nh4", "coastal"]["source"] == "a test correction"
    table = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "source, Permit 01/GP-TEST, Art. 3: the permit" in table.output


def test_limits_show_says_which_limits_hold_only_for_existing_facilities(tmp_path):
    config = collector_config(tmp_path, None)
    args = ["limits", "show", "-c", str(config), "--kind", "wastewater", "--date", str(DAY)]
    result = CliRunner().invoke(app, [*args, "--csv"])
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {(r["regulation"], r["until"], r["applies to"]) for r in rows} == {
        ("QCVN 14:2008/BTNMT", "2031-12-31", "existing facilities")
    }
    table = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert "existing facilities, QCVN 14:2008/BTNMT: Circular 05/2025/TT-BTNMT" in table.output


def test_limits_show_reports_a_wrong_site_entry_as_one_line(tmp_path):
    site_file(tmp_path, PERMIT.replace("source: the permit", "source: ''"))
    config = collector_config(tmp_path)
    args = ["limits", "show", "-c", str(config), "--kind", "seawater", "--date", str(DAY)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "site-limits.yaml: limits[0].source: say where this figure comes from" in result.output


@pytest.mark.servers  # the real command, as a process
def test_collector_run_refuses_to_start_on_a_wrong_site_entry(tmp_path):
    site_file(tmp_path, PERMIT.replace("source: the permit", "source: ''"))
    config = collector_config(tmp_path)
    result = run_cli("collector", "run", "-c", str(config), timeout_s=60)
    assert result.returncode == 2
    output = " ".join(result.stdout.split())
    assert "site-limits.yaml: limits[0].source: say where this figure comes from" in output
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything was opened
