"""Issue #23, item 7: a bad filter, time or window is the client's mistake, answered 422
with the reason at once, never retried as a store outage (503 after 12-29 s) or a crash
(500). Against a real `collector run` on each store, SQLite and InfluxDB, over HTTP and on
the command line; a good question still answered."""

import json
import time
import urllib.parse
import uuid
from datetime import timedelta

import pytest
from click.testing import Result
from typer.testing import CliRunner

from collector.cli.app import app
from testbed.processes import run_cli
from tests.collector.api.running import publish_minutes, start_collector
from tests.collector.stores.store_cases import T0
from tests.helpers import api_request

START = T0.isoformat()
END = (T0 + timedelta(hours=2)).isoformat()

# (path, query, the parameter the answer must name first)
BAD_QUESTIONS = [
    ("/readings", {"start": START, "device": "air-1\r"}, "device"),
    ("/readings", {"start": START, "device": "air-1\nDROP"}, "device"),
    ("/latest", {"device": "air-1\x00"}, "device"),
    ("/readings", {"start": START, "parameter": "pm10\n"}, "parameter"),
    ("/aggregates", {"start": START, "end": END, "parameter": "pm10\x00"}, "parameter"),
    ("/latest", {"parameter": "pm10\r\n"}, "parameter"),
    ("/readings", {"start": "9999-01-01T00:00:00Z"}, "start"),
    ("/readings", {"start": START, "end": "9999-12-31T23:59:59Z"}, "end"),
    ("/aggregates", {"start": "0001-01-01T00:00:00Z", "end": END}, "start"),
    ("/aggregates", {"start": START, "end": "9999-01-01T00:00:00+07:00"}, "end"),
    ("/aggregates", {"start": START, "end": END, "every": "99999999999d"}, "every"),
    ("/aggregates", {"start": START, "end": END, "every": "367d"}, "every"),
    ("/export", {"from": "0001-01-01"}, "from"),
    ("/export", {"from": T0.date().isoformat(), "to": "9999-12-31"}, "to"),
]


@pytest.fixture(params=["sqlite", "influxdb"])
def store_section(request, tmp_path):
    if request.param == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")}
    influxd = request.getfixturevalue("influxd")
    database = f"t{uuid.uuid4().hex[:12]}"
    return {"kind": "influxdb", "url": influxd.url, "api": "v1", "database": database}


@pytest.fixture
def collector(tmp_path, mosquitto, processes, store_section):
    running = start_collector(
        tmp_path / "collector",
        mosquitto,
        processes,
        store=store_section,
        stations={"air-1": {"kind": "air"}},
    )
    publish_minutes(mosquitto, 120)
    return running


def test_each_bad_filter_time_or_window_is_refused_422_at_once_naming_what_is_wrong(collector):
    ops = collector.token("anna", "ops")
    collector.wait_stored(ops, 120)
    for path, query, parameter in BAD_QUESTIONS:
        began = time.monotonic()
        status, body = api_request(f"{collector.url}{path}?{urllib.parse.urlencode(query)}", ops)
        took = time.monotonic() - began
        assert status == 422, (path, query, body)
        assert json.loads(body)["detail"].startswith(parameter), (path, query, body)
        assert took < 1, (path, query, took)

    good = urllib.parse.urlencode({"start": START, "end": END, "device": "air-1", "every": "1h"})
    status, body = api_request(f"{collector.url}/aggregates?{good}", ops)
    assert status == 200, body
    assert [row["mean"] for row in json.loads(body)] == [29.5, 89.5]
    good = urllib.parse.urlencode({"start": START, "parameter": "pm10", "limit": 5})
    status, body = api_request(f"{collector.url}/readings?{good}", ops)
    assert (status, len(json.loads(body))) == (200, 5)
    status, body = api_request(f"{collector.url}/export?from={T0.date()}", ops)
    assert status == 200, body


def in_process(*args: str) -> Result:
    """`collector ARGS` run by the command's own Typer app (the `collector` entry point) in
    this process, as run_cli runs it in a process of its own, 160 columns wide: a process
    per question spent 1.3 s of its time importing the collector before it could refuse."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_the_query_command_refuses_the_same_questions_in_one_line(collector):
    config = str(collector.config)
    collector.wait_stored(collector.token("anna", "ops"), 120)
    # The installed command in a process of its own: the refusal is the whole of its output.
    refused = run_cli("collector", "query", "-c", config, "--device", "air-1\n")
    output = (refused.stdout + refused.stderr).strip()
    assert refused.returncode == 2, output
    assert output.startswith("error: device"), output
    assert len(output.splitlines()) == 1, output
    for options, parameter in (
        (["--device", "air-1\n"], "device"),
        (["--parameter", "pm10\x01"], "parameter"),
        (["--since", "9999-01-01T00:00:00+00:00"], "start"),
        (["--since", "0001-01-01"], "start"),
        (["--until", "9999-01-01"], "end"),
        (["--since", "2h", "--every", "367d"], "every"),
        (["--since", "2h", "--every", "30m", "--rollup"], "--rollup"),
    ):
        began = time.monotonic()
        refused = in_process("query", "-c", config, *options)
        output = (refused.stdout + refused.stderr).strip()
        assert refused.exit_code == 2, (options, output, refused.exception)
        assert output.startswith(f"error: {parameter}"), (options, output)
        assert len(output.splitlines()) == 1, output
        assert time.monotonic() - began < 10
    for day, option in (("0001-01-01", "--from"), ("9999-12-31", "--from")):
        refused = in_process("export", "-c", config, "--from", day)
        assert refused.exit_code == 2, (refused.output, refused.exception)
        assert refused.stdout.startswith(f"error: {option} {day} is outside"), refused.stdout
    latest = in_process("latest", "-c", config, "--device", "air-1\r")
    assert latest.exit_code == 2, (latest.output, latest.exception)
    assert latest.stdout.startswith("error: device")
    since = (T0 - timedelta(minutes=1)).isoformat()
    answered = run_cli(
        "collector", "query", "-c", config, "--since", since, "--device", "air-1", "--csv"
    )
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert len(answered.stdout.strip().splitlines()) == 1 + 120
