"""A box that lost its state, as operations see it: `collector devices`, /metrics and the
API's /devices count its resets beside its gaps, from payloads as agents send them."""

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry
from typer.testing import CliRunner

from collector.cli.app import app
from collector.config import CollectorBrokerSettings, IngestSettings
from collector.ingest.committer import Committer
from collector.ingest.session import Ingest
from collector.metrics import IngestCollector
from collector.stores.sqlite import SqliteStore
from iotwire import encode
from iotwire.topics import Channel, topic_for
from testbed.processes import Processes
from testbed.waiting import free_port, wait_until
from tests.collector.api.running import start_collector
from tests.collector.stores.store_cases import message
from tests.helpers import api_request, metrics

FIRST, SECOND = "0123456789abcdef", "fedcba9876543210"


def sent() -> list[tuple[str, bytes]]:
    """air-1 numbers 1-3 in its first epoch, loses its SD card, numbers 1-2 in its second
    and sends 2 again; air-2, an agent older than epochs, loses 3 of 1-4."""
    messages = [
        *(message("air-1", s, s, epoch=FIRST, pm10=1.0) for s in (1, 2, 3)),
        *(message("air-1", s, 10 + s, epoch=SECOND, pm10=2.0) for s in (1, 2, 2)),
        *(message("air-2", s, s, pm10=3.0) for s in (1, 2, 4)),
    ]
    return [(topic_for("pq", "dd", m.device, Channel.TELEMETRY), encode(m)) for m in messages]


# device, messages, duplicates, gaps, resets
ACCOUNTS = [("air-1", 5, 1, 0, 1), ("air-2", 3, 0, 1, 0)]


@pytest.fixture
def committed(tmp_path: Path) -> Iterator[tuple[Path, SqliteStore]]:
    """A collector config and its store, holding `sent()` as ingest commits it."""
    config = tmp_path / "collector.yaml"
    path = tmp_path / "store.sqlite"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": str(path)}}))
    store = SqliteStore(path)
    result = Committer(store, "pq").commit(
        [(topic, payload, False) for topic, payload in sent()], datetime.now(UTC)
    )
    assert (result.stored, result.duplicates) == (8, 1)
    yield config, store
    store.close()


def test_collector_devices_shows_each_boxs_resets_beside_its_gaps(committed):
    config, _ = committed
    result = CliRunner().invoke(app, ["devices", "--config", str(config), "--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [
        (r["device"], r["messages"], r["duplicates"], r["gaps"], r["resets"]) for r in rows
    ] == [tuple(str(figure) for figure in account) for account in ACCOUNTS]


def test_metrics_export_each_boxs_resets_beside_its_gaps(committed):
    _, store = committed
    ingest = Ingest(CollectorBrokerSettings(), IngestSettings(), Committer(store, "pq"))
    registry = CollectorRegistry()
    registry.register(IngestCollector(ingest, store, None, timedelta(minutes=5)))
    text = generate_latest(registry).decode()
    for device, _, _, gaps, resets in ACCOUNTS:
        labels = f'{{device="{device}",site="dd"}}'
        assert f"collector_device_gaps{labels} {float(gaps)}" in text
        assert f"collector_device_state_resets{labels} {float(resets)}" in text
    assert "# TYPE collector_device_state_resets gauge" in text


def test_a_running_collector_answers_resets_in_the_api_and_metrics(
    tmp_path, mosquitto, processes: Processes
):
    collector = start_collector(tmp_path, mosquitto, processes, metrics={"port": free_port()})
    ops = collector.token("anna", "ops")

    async def publish() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as box:
            for topic, payload in sent():
                await box.publish(topic, payload, qos=1)

    asyncio.run(publish())

    def devices() -> list[dict[str, object]]:
        status, body = api_request(f"{collector.url}/devices", ops)
        assert status == 200, body
        found: list[dict[str, object]] = json.loads(body)
        return found

    wait_until(lambda: sum(int(str(d["messages"])) for d in devices()) == 8, 20, "8 stored")
    assert [
        (d["device"], d["messages"], d["duplicates"], d["gaps"], d["resets"]) for d in devices()
    ] == ACCOUNTS
    figures = metrics(collector.config)
    assert [
        figures[f'collector_device_state_resets{{device="{device}",site="dd"}}']
        for device, *_ in ACCOUNTS
    ] == [1, 0]
