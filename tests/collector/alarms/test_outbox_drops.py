"""Outbox drops reported in the boxes' health, handed to the alarms' health watch as the
ingest hands it each committed batch, judged by the evaluator over a real SQLite store
and alarm book (the whole path, through Mosquitto and `collector run`, is in
test_alarms_in_collector_run.py)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.alarms.service import Alarms
from collector.compliance.limits import configured_limits
from collector.config import CollectorConfig
from collector.stores.sqlite import SqliteStore
from iotwire import encode
from iotwire.batches import batch_payload
from iotwire.messages import ClockSync, Health, Reading, Sample, Telemetry
from tests.helpers import health as box_health

NOW = datetime.now(UTC).replace(microsecond=0)
EPOCH = "00000000000000d1"
RULES = [{"name": "outbox-drops", "type": "outbox_drops", "quiet_s": 600, "roles": ["technician"]}]


def health(device: str, seq: int, dropped: int, epoch: str = EPOCH, after_s: int = 0) -> Health:
    """A box whose outbox is full and has dropped `dropped` messages since it was made."""
    return box_health(
        seq,
        device,
        epoch,
        ts=NOW + timedelta(seconds=after_s or seq),
        disk_used_pct=99.0,
        outbox_depth=5000,
        outbox_dropped=dropped,
    )


def telemetry(device: str, seq: int) -> Telemetry:
    sample = Sample(
        sensor="outlet", ts=NOW, readings=(Reading(parameter="ph", value=7.0, unit="pH"),)
    )
    return Telemetry(device=device, seq=seq, epoch=EPOCH, clock=ClockSync.SYNCED, samples=(sample,))


class Collector:
    """The alarms of a collector, the evaluator ticked by hand; restarted at will."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = CollectorConfig.model_validate(
            {
                "store": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")},
                "alarms": {"path": str(tmp_path / "alarms.sqlite"), "mqtt": False, "rules": RULES},
            }
        )
        self.store = SqliteStore(tmp_path / "store.sqlite")
        self.start()

    def start(self) -> None:
        assert self.config.alarms is not None
        self.alarms = Alarms(
            self.config, self.config.alarms, self.store, configured_limits(self.config)
        )
        assert self.alarms.health is not None
        self.health = self.alarms.health

    def stop(self) -> None:
        self.alarms.close()

    def tick(self, now: datetime) -> list[tuple[str, str, bool]]:
        return [(c.alarm.rule, c.alarm.device, c.raised) for c in self.alarms.evaluator.tick(now)]

    def committed(self, messages: list[tuple[str, bytes]]) -> None:
        """As the ingest hands over a batch the store committed."""
        self.health.committed([(topic, payload, False) for topic, payload in messages])

    def heard(self, device: str, dropped: int) -> None:
        report = self.health.latest().get(device)
        assert report is not None
        assert report.dropped == dropped


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    made = Collector(tmp_path)
    yield made
    made.stop()
    made.store.close()


def test_drops_reported_in_health_raise_once_survive_a_restart_and_clear_when_quiet(
    collector,
):
    topic = "pq/v1/plant/ww-1"
    collector.committed([(f"{topic}/health", encode(health("ww-1", 1, 2)))])
    collector.heard("ww-1", 2)
    assert collector.tick(NOW) == []  # drops from before the alarms: the baseline
    # A backlog draining: the next health comes inside a batch with telemetry.
    inner = [encode(telemetry("ww-1", 2)), encode(health("ww-1", 3, 9))]
    collector.committed([(f"{topic}/batch", batch_payload("ww-1", inner))])
    collector.heard("ww-1", 9)
    assert collector.tick(NOW + timedelta(seconds=10)) == [("outbox-drops", "ww-1", True)]
    [alarm] = collector.alarms.book.alarms(active_only=True)
    assert alarm.value == 7.0
    assert alarm.message.startswith("ww-1: its outbox dropped 7 messages it never sent (9 since")
    assert alarm.roles == ("technician",)
    collector.stop()
    collector.start()  # a restart: the same count again is no news
    collector.committed([(f"{topic}/health", encode(health("ww-1", 4, 9)))])
    collector.heard("ww-1", 9)
    assert collector.tick(NOW + timedelta(seconds=20)) == []
    assert collector.alarms.evaluator.active == 1
    collector.stop()
    collector.start()  # again, and the box reports nothing more: quiet all the same
    assert collector.tick(NOW + timedelta(seconds=600)) == []
    assert collector.tick(NOW + timedelta(seconds=611)) == [("outbox-drops", "ww-1", False)]
    assert len(collector.alarms.book.alarms()) == 1


def test_a_new_outbox_counts_from_nought_and_a_box_cannot_report_for_another(collector):
    collector.committed([("pq/v1/plant/ww-2/health", encode(health("ww-2", 1, 40)))])
    collector.heard("ww-2", 40)
    assert collector.tick(NOW) == []
    # ww-3 claims ww-2 lost more: the broker lets a box publish on its own topics only,
    # so the payload of another box on ww-3's topic is refused.
    collector.committed([("pq/v1/plant/ww-3/health", encode(health("ww-2", 2, 90)))])
    collector.heard("ww-2", 40)
    assert collector.health.refused == 1
    assert collector.tick(NOW + timedelta(seconds=5)) == []
    # A new SD card: a new epoch whose outbox already dropped 3, fewer than the old 40.
    renewed = health("ww-2", 1, 3, epoch="00000000000000d2", after_s=60)
    collector.committed([("pq/v1/plant/ww-2/health", encode(renewed))])
    collector.heard("ww-2", 3)
    assert collector.tick(NOW + timedelta(seconds=10)) == [("outbox-drops", "ww-2", True)]
    assert collector.alarms.book.alarms()[0].value == 3.0
