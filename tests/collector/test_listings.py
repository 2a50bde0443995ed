"""Issue #25, item 2: every listing of `collector` reads in a pipe, as CSV or JSON, with
the same flags everywhere; a cell CSV writes as a number is a number in JSON."""

import csv
import io
import json
from types import SimpleNamespace

from testbed.collector_setup import collector_config
from testbed.processes import run_cli


def config_with_users(tmp_path):
    config = collector_config(
        tmp_path,
        SimpleNamespace(host="127.0.0.1", port=1883),  # no broker is asked
        "collector-listings",
        api={"users_path": str(tmp_path / "users.sqlite")},
        alerts={"path": str(tmp_path / "police.sqlite")},
    )
    added = run_cli("collector", "users", "add", "anna", "--role", "ops", "-c", str(config))
    assert added.returncode == 0, added.stdout + added.stderr
    return config


def test_users_watchlist_and_limits_list_as_json_and_csv(tmp_path):
    config = str(config_with_users(tmp_path))
    watched = run_cli(
        "collector", "watchlist", "add", "-c", config, "51G-678.90", "--reason", "stolen car",
        "--by", "officer-1",
    )  # fmt: skip
    assert watched.returncode == 0, watched.stdout + watched.stderr

    users = json.loads(run_cli("collector", "users", "list", "-c", config, "--json").stdout)
    assert [(u["name"], u["role"], u["state"]) for u in users] == [("anna", "ops", "active")]
    assert users[0]["revoked"] is None  # an empty cell is null

    entries = json.loads(run_cli("collector", "watchlist", "list", "-c", config, "--json").stdout)
    assert [e["plate"] for e in entries] == ["51G67890"]

    limits = run_cli(
        "collector", "limits", "show", "-c", config, "--kind", "wastewater", "--json"
    ).stdout
    nh4 = [row for row in json.loads(limits) if row["parameter"] == "nh4"]
    assert {row["regulation"] for row in nh4} == {"QCVN 14:2008/BTNMT"}
    table = list(csv.DictReader(io.StringIO(run_cli(
        "collector", "limits", "show", "-c", config, "--kind", "wastewater", "--csv"
    ).stdout)))  # fmt: skip
    assert {row["parameter"] for row in table} == {row["parameter"] for row in json.loads(limits)}


def test_csv_and_json_at_once_is_refused_in_both_clis(tmp_path):
    config = str(config_with_users(tmp_path))
    for command in (
        ("collector", "users", "list", "-c", config),
        ("collector", "devices", "list", "-c", config),
        ("edge-agent", "profiles"),
    ):
        both = run_cli(*command, "--csv", "--json")
        assert both.returncode == 2, command
        assert "--csv or --json, not both" in both.stdout + both.stderr
