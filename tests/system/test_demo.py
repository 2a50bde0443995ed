"""`make demo` runs the whole path on embedded defaults and reports nothing lost, a
wastewater exceedance judged by the limits in force, and the station data files on the
authority's FTP server. The demo runs once, with a shorter duration, for all the tests."""

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

# The demo's camera must read a passing car in real time: it runs alone (`make test`).
pytestmark = [pytest.mark.servers, pytest.mark.solo]

DEMO = REPO / "scripts" / "demo.py"
COLLECTOR = Path(sys.executable).parent / "collector"
STATION_CODES = ("AIRDD01", "DWDD01", "WWAT01", "NOISEDD01")
NH4_LIMIT = 12.0
"""QCVN 14:2008 column B ammonium, 10 mg/L, times the demo plant's K of 1.2."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo's working directory and its output, after a run that succeeded."""
    workdir = tmp_path_factory.mktemp("demo") / "run"
    args = ["--duration", "16", "--interval", "1", "--workdir", str(workdir)]
    result = subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True,
        text=True,
        # 16 s of data, the export, then up to a minute's wait for the first files to go up.
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert "Traceback" not in output
    return workdir, output


def test_demo_shows_four_station_kinds_a_police_alert_loses_nothing_and_exports(demo):
    workdir, output = demo
    for kind in ("air", "domestic_water", "wastewater", "noise"):
        assert f" {kind} " in output
    assert "every message the agents produced is in the store, exactly once" in output
    assert "Export for the environmental officer" in output
    assert "4 station(s)" in output
    assert "POLICE ALERT" in output
    words = " ".join(output.split())  # rich wraps lines at the terminal's width
    assert "Camera pole 7, Tran Hung Dao x Nguyen Trung Truc (10.2149, 103.9588)" in words
    assert "alert.raise" in output
    report = (workdir / "report.html").read_text(encoding="utf-8")
    assert report.count('<figure class="chart"') >= 4
    in_vietnamese = (workdir / "report-vi.html").read_text(encoding="utf-8")
    assert '<html lang="vi"' in in_vietnamese
    assert "Báo cáo kết quả quan trắc môi trường" in in_vietnamese


def test_demo_shows_the_wastewater_ammonium_over_its_limit(demo):
    _, output = demo
    words = " ".join(output.split())
    shown = words.split("Exceedances: means over the limit in force today")[1]
    shown = shown.split("waiting for the first one-minute interval")[0]
    assert "ww-at-01" in shown
    assert "nh4" in shown
    assert "QCVN" in shown  # the rest of the regulation is folded in its narrow cell


def test_the_exceedance_is_the_export_s_own_judgment(demo):
    """Read back through `collector export`, as the officer would: the ammonium means are
    judged against QCVN 14:2008 column B with K, and are over it."""
    workdir, output = demo
    [day] = re.findall(r"Export for the environmental officer, (\d{4}-\d{2}-\d{2})", output)
    export = subprocess.run(
        [str(COLLECTOR), "export", "-c", str(workdir / "collector.yaml"), "--from", day],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    over = [
        row
        for row in csv.DictReader(io.StringIO(export.stdout))
        if row["station"] == "ww-at-01" and row["parameter"] == "nh4" and row["exceeded"] == "yes"
    ]
    assert over
    assert all(float(row["value"]) > NH4_LIMIT for row in over)
    assert all(row["regulation"].startswith("QCVN 14:2008/BTNMT") for row in over)


def test_every_station_s_file_reached_the_ftp_server_and_is_shown(demo):
    workdir, output = demo
    root = workdir / "ftp-authority"
    names = sorted(path.name for path in root.glob("*.txt"))
    firsts = {}
    for name in names:
        match = re.fullmatch(r"KG_PQ_([A-Z0-9]+)_(\d{14})\.txt", name)
        assert match, name
        firsts.setdefault(match[1], match[2])
        assert name in output
    assert set(firsts) == set(STATION_CODES)
    stamp = firsts["WWAT01"]
    lines = (root / f"KG_PQ_WWAT01_{stamp}.txt").read_text(encoding="utf-8").splitlines()
    [nh4] = [line.split("\t") for line in lines if line.startswith("NH4\t")]
    assert nh4[2:] == ["mg/L", stamp, "00"]
    assert float(nh4[1]) > NH4_LIMIT
    assert f"KG_PQ_WWAT01_{stamp}.txt: a line per parameter" in " ".join(output.split())


def test_the_demo_serves_the_wall_with_every_box_on_the_map_and_the_alert(demo):
    _, output = demo
    words = " ".join(output.split())
    assert re.search(r"wall http://127\.0\.0\.1:\d+/wall, sign in as duty / \S+", words)
    assert "The wall: 5 of 5 boxes on the island map, 1 police alert on the police panel" in words
