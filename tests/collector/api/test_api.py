"""The HTTP API as its users meet it: a real `collector run` process serving it, tokens made
with `collector users`, and plain HTTP requests."""

import asyncio
import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import aiomqtt
import pytest

from iotwire import encode
from testbed.collector_setup import collector_config
from testbed.processes import run_cli
from testbed.waiting import free_port, wait_for_port, wait_until
from tests.collector.stores.store_cases import T0, message
from tests.helpers import api_request


@pytest.fixture
def api(tmp_path, mosquitto, processes):
    port = free_port()
    api = {"port": port, "users_path": str(tmp_path / "users.sqlite")}
    config = collector_config(tmp_path, mosquitto, "collector-api", api=api)
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_for_port(port)
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")

    async def publish() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            for minute in range(120):
                msg = message("air-1", minute + 1, minute, pm10=float(minute))
                await client.publish("pq/v1/dd/air-1/telemetry", encode(msg), qos=1)

    asyncio.run(publish())
    return config, f"http://127.0.0.1:{port}"


def token(config, name: str, role: str) -> str:
    result = run_cli("collector", "users", "add", name, "--role", role, "-c", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_roles_decide_who_reads_what_and_a_revoked_token_stops_working(api):
    config, url = api
    ops, police = token(config, "anna", "ops"), token(config, "binh", "police")
    assert api_request(f"{url}/devices")[0] == 401
    assert api_request(f"{url}/devices", "not-a-token")[0] == 401
    status, body = api_request(f"{url}/devices", police)
    assert (status, json.loads(body)["detail"]) == (403, "role police may not use this")
    wait_until(
        lambda: json.loads(api_request(f"{url}/devices", ops)[1])[0]["messages"] == 120,
        20,
        "120 messages stored",
    )
    [device] = json.loads(api_request(f"{url}/devices", ops)[1])
    assert (device["device"], device["gaps"], device["duplicates"]) == ("air-1", 0, 0)
    run_cli("collector", "users", "revoke", "anna", "-c", str(config))
    assert api_request(f"{url}/devices", ops)[0] == 401
    again = run_cli("collector", "users", "add", "anna", "--role", "ops", "-c", str(config))
    assert again.returncode == 0


def test_hourly_means_and_latest_values_as_json_and_csv(api):
    config, url = api
    env = token(config, "chi", "env")
    wait_until(
        lambda: json.loads(api_request(f"{url}/devices", env)[1])[0]["messages"] == 120,
        20,
        "120 messages stored",
    )
    query = urllib.parse.urlencode(
        {
            "start": T0.isoformat(),
            "end": (T0 + timedelta(hours=2)).isoformat(),
            "every": "1h",
            "fn": ["mean", "max", "count"],
            "format": "csv",
        },
        doseq=True,
    )
    status, body = api_request(f"{url}/aggregates?{query}", env)
    assert status == 200, body
    rows = list(csv.DictReader(io.StringIO(body)))
    # Minutes 0..59 and 60..119 carry their own minute as the value.
    assert [(float(r["mean"]), float(r["max"]), float(r["count"])) for r in rows] == [
        (29.5, 59.0, 60.0),
        (89.5, 119.0, 60.0),
    ]
    [newest] = json.loads(api_request(f"{url}/latest?device=air-1&parameter=pm10", env)[1])
    assert (newest["value"], newest["ts"]) == (119.0, (T0 + timedelta(minutes=119)).isoformat())
    assert api_request(f"{url}/docs", env)[0] == 200


def test_a_bad_request_says_what_to_fix(api):
    config, url = api
    ops = token(config, "dung", "ops")
    start = urllib.parse.quote(T0.isoformat())
    status, body = api_request(f"{url}/aggregates?start={start}&end={start}&every=banana", ops)
    assert status == 422
    assert "'banana' is not a duration" in json.loads(body)["detail"]
    status, body = api_request(f"{url}/readings", ops)
    assert status == 422
    assert json.loads(body)["detail"][0]["loc"] == ["query", "start"]
    status, body = api_request(f"{url}/aggregates?start={start}&end=yesterday", ops)
    assert status == 422
    assert json.loads(body)["detail"][0]["loc"] == ["query", "end"]
