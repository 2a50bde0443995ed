"""The walking skeleton as an operator runs it: a simulated Modbus TCP analyser, a real
`edge-agent` process, a real Mosquitto, a real `collector` process, and `collector query`."""

import csv
import io
import signal
from pathlib import Path

import pytest
import yaml

from collector.config import load_collector
from collector.query import ReadingQuery
from collector.stores import open_store
from edge_agent.outbox import Outbox
from testbed.processes import run_cli
from testbed.waiting import wait_until

pytestmark = pytest.mark.servers


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(params=["sqlite", "influxdb"])
def store_settings(request, tmp_path) -> dict:
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "telemetry.sqlite")}
    server = request.getfixturevalue("influxd")
    return {"kind": "influxdb", "url": server.url, "api": "v1", "database": tmp_path.name[-60:]}


def test_readings_flow_from_a_modbus_device_to_the_store_and_the_query_cli(
    mosquitto, processes, simulated_device, tmp_path, store_settings
):
    device_port = simulated_device("1:pq-sim-air")
    broker = {"host": mosquitto.host, "port": mosquitto.port}
    collector_config = write_yaml(
        tmp_path / "collector.yaml",
        {
            "broker": broker,
            "store": store_settings,
            "ingest": {"client_id": "collector-e2e"},
        },
    )
    agent_config = write_yaml(
        tmp_path / "agent.yaml",
        {
            "device": {
                "id": "air-e2e-01",
                "site": "duong-dong",
                "kind": "air",
                "name": "E2E station",
            },
            "broker": broker,
            "state_dir": str(tmp_path / "agent-state"),
            "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": device_port}],
            "sources": [
                {
                    "name": "aqms",
                    "type": "modbus",
                    "bus": "gw",
                    "profile": "pq-sim-air",
                    "interval_s": 0.5,
                }
            ],
            "health": {"interval_s": 2},
        },
    )
    processes.start("collector", "collector", "run", "-c", str(collector_config))
    # A message published before the collector's first subscription has no session to
    # wait in: start the agent once the collector is listening, as an operator would.
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    agent = processes.start("agent", "edge-agent", "run", "-c", str(agent_config))

    store = open_store(load_collector(collector_config))

    def samples() -> int:
        return len({r.ts for r in store.query(ReadingQuery(devices=("air-e2e-01",), limit=10**6))})

    wait_until(lambda: samples() >= 6, 30, "six samples in the store")

    # The query CLI shows them, as a table and as CSV.
    table = run_cli("collector", "query", "-c", str(collector_config), "--parameter", "pm2_5")
    assert table.returncode == 0, table.stdout + table.stderr
    assert "air-e2e-01" in table.stdout
    assert "pm2_5" in table.stdout
    as_csv = run_cli(
        "collector",
        "query",
        "-c",
        str(collector_config),
        "--csv",
        "--device",
        "air-e2e-01",
        "--parameter",
        "pm10",
        "--parameter",
        "no2",
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) >= 12
    assert {r["parameter"] for r in rows} == {"pm10", "no2"}
    assert all(15 * 0.9 <= float(r["value"]) <= 70 * 1.1 for r in rows if r["parameter"] == "pm10")

    # Aggregates per window and the latest value per series, from the same store.
    means = run_cli(
        "collector",
        "query",
        "-c",
        str(collector_config),
        "--csv",
        "--every",
        "1h",
        "--fn",
        "mean",
        "--fn",
        "count",
        "--parameter",
        "pm10",
    )
    windows = list(csv.DictReader(io.StringIO(means.stdout)))
    assert 1 <= len(windows) <= 2  # two when the run straddles the top of an hour
    assert all(15 * 0.9 <= float(w["mean"]) <= 70 * 1.1 for w in windows)
    assert sum(float(w["count"]) for w in windows) >= 6
    latest = run_cli("collector", "latest", "-c", str(collector_config), "--csv")
    assert {r["parameter"] for r in csv.DictReader(io.StringIO(latest.stdout))} >= {"pm10", "no2"}

    # A clean stop drains the outbox and says "offline"; every message arrived exactly once.
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(20) == 0, processes.log("agent")
    outbox = Outbox(tmp_path / "agent-state" / "outbox.sqlite")
    produced, queued = outbox.last_seq(), outbox.depth()
    outbox.close()
    assert queued == 0

    def device():
        [row] = store.devices()
        return row

    wait_until(lambda: device().state == "offline", 15, "offline status stored")
    wait_until(lambda: device().messages == produced, 15, "every message stored")
    row = device()
    print(
        f"produced {produced}, stored {row.messages}, duplicates {row.duplicates}, gaps {row.gaps}"
    )
    assert (row.messages, row.duplicates, row.gaps) == (produced, 0, 0)

    listing = run_cli("collector", "devices", "-c", str(collector_config))
    assert "air-e2e-01" in listing.stdout
    assert "offline" in listing.stdout


def test_the_query_cli_refuses_a_bad_time(tmp_path):
    config = write_yaml(
        tmp_path / "collector.yaml",
        {
            "store": {"kind": "sqlite", "path": str(tmp_path / "s.sqlite")},
        },
    )
    result = run_cli("collector", "query", "-c", str(config), "--since", "yesterday-ish")
    assert result.returncode == 2
    assert "neither a duration" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
