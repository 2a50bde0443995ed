"""A real `collector run`, its commit process and Mosquitto, when something is wrong: a box
sending garbage is named, a store that is not what it should be or that fails inside the
commit process is reported as such, and a stop is a clean exit through all of it."""

import json
import signal
import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.publish

from collector.config import load_collector
from collector.stores import open_store
from iotwire import encode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel, topic_for
from testbed.collector_setup import collector_config
from testbed.waiting import free_port, wait_for_port, wait_until
from tests.helpers import metrics

NOW = datetime.now(UTC).replace(microsecond=0)


def telemetry(device: str, seq: int) -> bytes:
    reading = Reading(parameter="pm10", value=float(seq), unit="µg/m³")
    sample = Sample(sensor="aqms", ts=NOW - timedelta(minutes=seq), readings=(reading,))
    return encode(Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,)))


def topic(device: str) -> str:
    return topic_for("pq", "dd", device, Channel.TELEMETRY)


def publish(broker, items: list[tuple[str, bytes]]) -> None:
    paho.mqtt.publish.multiple(
        [{"topic": t, "payload": p, "qos": 1} for t, p in items],
        hostname=broker.host,
        port=broker.port,
        client_id="test-publisher",
    )


def start_collector(processes, tmp_path: Path, broker, **sections) -> tuple[Path, subprocess.Popen]:
    port = free_port()
    config = collector_config(
        tmp_path,
        broker,
        "collector-under-test",
        metrics={"host": "127.0.0.1", "port": port},
        retention={"every_s": 3600},
        **sections,
    )
    collector = processes.start("collector", "collector", "run", "-c", str(config))
    wait_for_port(port)
    wait_until(lambda: "subscribed to" in processes.log("collector"), 30, "collector subscribed")
    return config, collector


def stopped(collector: subprocess.Popen, how: signal.Signals = signal.SIGTERM) -> int:
    collector.send_signal(how)
    return collector.wait(60)


def test_garbage_is_counted_and_logged_under_the_box_that_sent_it(tmp_path, mosquitto, processes):
    config, collector = start_collector(processes, tmp_path, mosquitto)
    unit_with_a_line = json.loads(telemetry("ww-at-01", 9))
    unit_with_a_line["samples"][0]["readings"][0]["unit"] = "\nreading,device=ww-at-01"
    garbage = [
        *[(topic("ww-at-01"), b"{not json")] * 3,
        *[(topic("ww-at-01"), json.dumps(unit_with_a_line).encode())] * 2,
        ("pq/v1/DD/box/telemetry", telemetry("box", 99)),
    ]
    good = [(topic(d), telemetry(d, seq)) for seq in range(1, 6) for d in ("air-1", "air-2")]
    publish(mosquitto, [*garbage, *good])
    total = len(garbage) + len(good)
    wait_until(
        lambda: metrics(config).get("collector_messages_received_total") == total,
        30,
        "every message received",
    )
    scraped = metrics(config)
    assert stopped(collector) == 0

    by_sender = {
        key: value
        for key, value in scraped.items()
        if key.startswith("collector_messages_invalid_by_sender_total{")
    }
    assert by_sender == {
        'collector_messages_invalid_by_sender_total{reason="bad_json",sender="ww-at-01"}': 3,
        'collector_messages_invalid_by_sender_total{reason="invalid_value",sender="ww-at-01"}': 2,
        'collector_messages_invalid_by_sender_total{reason="bad_topic",'
        'sender="pq/v1/DD/box/telemetry"}': 1,
    }
    log = processes.log("collector")
    # The first of each sender's reasons is logged at once, the repeats within a minute not.
    assert log.count("dropped invalid message from ww-at-01 (bad_json)") == 1
    assert log.count("dropped invalid message from ww-at-01 (invalid_value)") == 1
    assert "dropped invalid message from pq/v1/DD/box/telemetry (bad_topic)" in log
    with closing(open_store(load_collector(config))) as store:
        devices = {d.device: (d.messages, d.gaps) for d in store.devices()}
    assert devices == {"air-1": (5, 0), "air-2": (5, 0)}


def test_a_store_that_answers_queries_like_no_influxdb_is_down_and_a_stop_is_clean(
    tmp_path, mosquitto, victoria_metrics, processes
):
    # VictoriaMetrics takes line protocol but answers every /query with a list of
    # databases: a collector pointed at it by mistake must say its store is down.
    store = {"kind": "influxdb", "url": victoria_metrics.url, "api": "v1", "retry_for_s": 1}
    config, collector = start_collector(processes, tmp_path, mosquitto, store=store)
    publish(mosquitto, [(topic("air-1"), telemetry("air-1", 1))])
    wait_until(
        lambda: metrics(config).get("collector_store_failures_total", 0) >= 1,
        30,
        "the store failing a batch",
    )
    scraped = metrics(config)
    assert scraped["collector_store_up"] == 0
    assert scraped["collector_messages_stored_total"] == 0
    assert stopped(collector) == 0
    log = processes.log("collector")
    assert "the answer has no 'time'" in log  # the rollup, and /metrics
    assert "the answer has no 'device'" in log  # the commit process's ledger lookup
    assert "KeyError" not in log
    assert "AttributeError" not in log


def test_a_failure_in_the_commit_process_is_logged_by_the_collector_with_its_reason(
    tmp_path, mosquitto, processes
):
    config, collector = start_collector(processes, tmp_path, mosquitto)
    # Another process holds the store's write lock: the commit process's writes fail
    # with SQLite's own error, which is no unavailable store the committer knows of.
    blocker = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    publish(mosquitto, [(topic("air-1"), telemetry("air-1", 1))])
    wait_until(
        lambda: (
            "CommitProcessError: the commit process failed: OperationalError: database is"
            " locked" in processes.log("collector")
        ),
        60,
        "the commit process's failure, in the collector's log",
    )
    blocker.execute("ROLLBACK")
    blocker.close()
    wait_until(
        lambda: metrics(config).get("collector_messages_stored_total") == 1,
        60,
        "the message stored once the lock is gone",
    )
    assert collector.poll() is None
    assert stopped(collector, signal.SIGINT) == 0
    assert "AttributeError" not in processes.log("collector")
