"""`collector devices list`: every registered box, whether it ever connected or not, beside
those that sent something, as a table, CSV or JSON that stay readable in a pipe."""

import csv
import io
import json
from datetime import UTC, datetime

import yaml
from typer.testing import CliRunner

from collector.cli.app import app
from collector.fleet.registry import Registry
from collector.ingest.committer import Committer
from collector.stores.sqlite import SqliteStore
from iotruntime.registration import BoxKind, Registration
from iotwire import encode
from iotwire.topics import Channel, topic_for
from tests.collector.stores.store_cases import message


def site_with_a_box_never_seen(tmp_path):
    store_path, registry_path = tmp_path / "store.sqlite", tmp_path / "devices.sqlite"
    config = tmp_path / "collector.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": {"kind": "sqlite", "path": str(store_path)},
                "registry": {"path": str(registry_path)},
            }
        )
    )
    store = SqliteStore(store_path)
    sent = [message("air-1", s, s, pm10=1.0) for s in (1, 2)]
    Committer(store, "pq").commit(
        [(topic_for("pq", "dd", m.device, Channel.TELEMETRY), encode(m), False) for m in sent],
        datetime.now(UTC),
    )
    store.close()
    registry = Registry(registry_path)
    for device, kind, name in (
        ("air-1", BoxKind.AIR, "Duong Dong air station"),
        ("cam-9", BoxKind.CAMERA_POLE, "An Thoi port, pole 9"),
    ):
        registry.register(Registration(device=device, site="dd", kind=kind, name=name))
    registry.close()
    return config


def test_every_registered_box_is_listed_even_one_that_never_connected(tmp_path):
    config = site_with_a_box_never_seen(tmp_path)
    runner = CliRunner()
    as_csv = runner.invoke(app, ["devices", "list", "-c", str(config), "--csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [(r["device"], r["name"], r["state"], r["messages"], r["last_seen"]) for r in rows] == [
        ("air-1", "Duong Dong air station", "unknown", "2", rows[0]["last_seen"]),
        ("cam-9", "An Thoi port, pole 9", "never seen", "0", ""),
    ]
    assert datetime.fromisoformat(rows[0]["last_seen"]).tzinfo is not None
    as_json = runner.invoke(app, ["devices", "-c", str(config), "--json"])
    assert as_json.exit_code == 0, as_json.output
    listed = {d["device"]: d for d in json.loads(as_json.output)}
    assert listed["cam-9"]["state"] == "never seen"
    assert listed["cam-9"]["last_seen"] is None
    assert listed["air-1"]["messages"] == 2
    table = runner.invoke(app, ["devices", "list", "-c", str(config)])
    assert "2 device(s)" in table.output
    assert "never" in table.output  # `never seen`, folded or not by the table's width
    both = runner.invoke(app, ["devices", "-c", str(config), "--json", "--csv"])
    assert both.exit_code == 2
    assert "--csv or --json, not both" in both.output
