"""The alarm lifecycle on real files: a real SQLite store written as ingest writes it,
the alarm book on its own SQLite file, the evaluator ticked by hand at chosen times."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.alarms.delivery import ChannelsOf
from collector.alarms.evaluation import Evaluator
from collector.alarms.running import RunningMean
from collector.alarms.service import Alarms
from collector.compliance.limits import configured_limits
from collector.config import CollectorConfig
from collector.stores.base import ReceivedMessage
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Quality, Reading, Sample, Status, Telemetry

NOW = datetime.now(UTC).replace(microsecond=0)
RULES: list[dict[str, Any]] = [
    {"name": "box-offline", "type": "offline", "severity": "critical"},
    {"name": "box-silent", "type": "silent", "after_s": 600},
    {"name": "stream-gaps", "type": "gaps", "quiet_s": 600},
    {
        "name": "effluent-limit",
        "type": "limit",
        "kinds": ["wastewater"],
        "parameters": ["bod5"],
        "hysteresis": 0.05,
    },
    {"name": "ph-probe", "type": "threshold", "parameter": "ph", "min": 3, "max": 12},
    {"name": "source-faults", "type": "faults", "window_s": 600, "share": 0.5, "min_readings": 4},
    {
        "name": "ap-no-clients",
        "type": "threshold",
        "parameter": "clients",
        "min": 1,
        "for_s": 120,
        "hours": "07:00-22:00",
    },
    {"name": "air-quality", "type": "aqi", "band": "poor"},
]


def config_of(tmp_path: Path, rules: list[dict[str, Any]] = RULES) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "store": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")},
            "stations": {
                "ww-1": {"kind": "wastewater", "column": "B"},
                "air-1": {"kind": "air", "aqi": True},
            },
            "alarms": {"path": str(tmp_path / "alarms.sqlite"), "mqtt": False, "rules": rules},
        }
    )


class Rig:
    """A store, and alarms over it that a test restarts at will."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = config_of(tmp_path)
        self.store = SqliteStore(tmp_path / "store.sqlite")
        self.seq = 0
        self.alarms = self.start()

    def start(self) -> Alarms:
        assert self.config.alarms is not None
        return Alarms(self.config, self.config.alarms, self.store, configured_limits(self.config))

    def restart(self) -> None:
        self.alarms.close()
        self.alarms = self.start()

    def send(
        self,
        ts: datetime,
        parameter: str,
        value: float | None,
        unit: str = "mg/L",
        sensor: str = "outlet",
        device: str = "ww-1",
    ) -> None:
        self.seq += 1
        quality = Quality.OK if value is not None else Quality.FAULT
        reading = Reading(parameter=parameter, value=value, unit=unit, quality=quality)
        message = Telemetry(
            device=device,
            seq=self.seq,
            epoch="0123456789abcdef",
            clock=ClockSync.SYNCED,
            samples=(Sample(sensor=sensor, ts=ts, readings=(reading,)),),
        )
        self.store.write_batch([ReceivedMessage("plant", message, ts)])

    def status(self, state: str, ts: datetime, device: str = "ww-1") -> None:
        status = Status(device=device, seq=self.seq, state=state, ts=ts, version="1", boot_id="b1")
        self.store.record_status("plant", status, ts)

    def tick(self, now: datetime) -> list[tuple[str, bool]]:
        return [(c.alarm.rule, c.raised) for c in self.alarms.evaluator.tick(now)]

    def events(self) -> list[tuple[str, str]]:
        book = self.alarms.book
        return [(e.event, book.get(e.alarm).rule) for e in book.history() if e.alarm]

    def close(self) -> None:
        self.alarms.close()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path):
    made = Rig(tmp_path)
    yield made
    made.close()


def test_an_hourly_mean_over_the_limit_raises_once_names_the_regulation_and_does_not_flap(rig):
    start = NOW - timedelta(minutes=50)
    minute = timedelta(minutes=1)
    for i in range(10):  # BOD5 at 40 mg/L: inside column B's 50
        rig.send(start + i * minute, "bod5", 40.0)
    assert rig.tick(start + 10 * minute) == []
    for i in range(10, 20):  # at 80: the running mean passes 50 on the way
        rig.send(start + i * minute, "bod5", 80.0)
    assert rig.tick(start + 20 * minute) == [("effluent-limit", True)]
    [alarm] = rig.alarms.book.alarms(active_only=True)
    assert alarm.regulation == "QCVN 14:2008/BTNMT"
    assert (alarm.limit, alarm.unit, alarm.averaging) == (50.0, "mg/L", "1h")
    assert "limit 50 mg/L of QCVN 14:2008/BTNMT (column B)" in alarm.message
    for i in range(20, 40):  # hovering around the limit: mean between 47.5 and 52.5
        rig.send(start + i * minute, "bod5", 40.0 if i % 2 else 60.0)
        assert rig.tick(start + (i + 1) * minute) == []
    for i in range(40, 50):  # back well inside: resolved once
        rig.send(start + i * minute, "bod5", 10.0)
    assert rig.tick(start + 50 * minute) == [("effluent-limit", False)]
    assert rig.events() == [("raised", "effluent-limit"), ("resolved", "effluent-limit")]


def test_a_restart_keeps_the_active_alarm_and_raises_no_duplicate(rig):
    for i in range(5):
        rig.send(NOW - timedelta(minutes=10 - i), "bod5", 90.0)
    assert rig.tick(NOW) == [("effluent-limit", True)]
    [before] = rig.alarms.book.alarms(active_only=True)
    rig.restart()
    assert rig.alarms.evaluator.active == 1
    assert rig.tick(NOW + timedelta(seconds=5)) == []
    assert [a.id for a in rig.alarms.book.alarms()] == [before.id]
    for i in range(60):
        rig.send(NOW + timedelta(seconds=10 + i), "bod5", 5.0)
    assert rig.tick(NOW + timedelta(minutes=2)) == [("effluent-limit", False)]
    assert rig.alarms.book.get(before.id).state == "resolved"


def test_a_silenced_box_raises_nothing(rig):
    rig.alarms.book.silence(None, "ww-1", NOW + timedelta(hours=1), "op", "pump swap", NOW)
    rig.send(NOW - timedelta(minutes=1), "ph", 2.0, "pH")
    rig.status("offline", NOW)
    assert rig.tick(NOW) == []
    assert rig.alarms.book.alarms() == []
    assert [e.event for e in rig.alarms.book.history()] == ["silenced"]


def test_offline_raises_once_and_online_resolves_it(rig):
    rig.status("online", NOW)
    assert rig.tick(NOW) == []
    rig.status("offline", NOW + timedelta(seconds=5))
    assert rig.tick(NOW + timedelta(seconds=5)) == [("box-offline", True)]
    assert rig.tick(NOW + timedelta(seconds=10)) == []
    rig.status("online", NOW + timedelta(seconds=15))
    assert rig.tick(NOW + timedelta(seconds=15)) == [("box-offline", False)]


def test_a_box_online_but_quiet_past_its_window_is_silent(rig):
    rig.status("online", NOW)
    assert rig.tick(NOW + timedelta(seconds=599)) == []
    assert rig.tick(NOW + timedelta(seconds=601)) == [("box-silent", True)]
    rig.send(NOW + timedelta(seconds=602), "ph", 7.0, "pH")
    assert rig.tick(NOW + timedelta(seconds=603)) == [("box-silent", False)]


def test_a_raw_value_beyond_the_threshold_raises_and_the_next_normal_one_resolves(rig):
    rig.send(NOW - timedelta(seconds=30), "ph", 2.0, "pH")
    assert rig.tick(NOW) == [("ph-probe", True)]
    assert "ww-1 outlet/ph: 2 pH under 3" in rig.alarms.book.alarms()[0].message
    rig.send(NOW, "ph", 7.0, "pH")
    assert rig.tick(NOW + timedelta(seconds=5)) == [("ph-probe", False)]


def test_new_gaps_in_a_stream_raise_and_a_quiet_spell_resolves(rig):
    rig.send(NOW - timedelta(minutes=2), "ph", 7.0, "pH")
    assert rig.tick(NOW) == []  # the first count seen is the baseline
    rig.seq += 3  # three messages lost
    rig.send(NOW - timedelta(minutes=1), "ph", 7.0, "pH")
    assert rig.tick(NOW + timedelta(seconds=5)) == [("stream-gaps", True)]
    assert rig.alarms.book.alarms()[0].value == 3.0
    assert rig.tick(NOW + timedelta(seconds=700)) == [("stream-gaps", False)]


def test_history_is_append_only(rig):
    rig.status("offline", NOW)
    rig.tick(NOW)
    db = sqlite3.connect(rig.alarms.book.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE history SET actor = 'someone'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM history")
    db.close()


def test_acknowledging_records_who_and_keeps_the_first(rig):
    rig.status("offline", NOW)
    rig.tick(NOW)
    [alarm] = rig.alarms.book.alarms()
    rig.alarms.book.acknowledge(alarm.id, "lan", NOW)
    again = rig.alarms.book.acknowledge(alarm.id, "minh", NOW + timedelta(seconds=1))
    assert again.acked_by == "lan"
    assert [e.actor for e in rig.alarms.book.history(alarm.id)] == ["collector", "lan"]


def test_a_rule_removed_from_the_config_has_its_alarms_resolved_at_start(tmp_path, rig):
    rig.status("offline", NOW)
    rig.tick(NOW)
    rig.config = config_of(tmp_path, [r for r in RULES if r["name"] != "box-offline"])
    rig.restart()
    [change] = rig.alarms.evaluator.retire_removed_rules(NOW)
    assert (change.alarm.rule, change.alarm.state) == ("box-offline", "resolved")


def test_a_source_mostly_faulting_raises_and_clears_under_half_its_share(rig):
    start = NOW - timedelta(minutes=5)
    for i, value in enumerate([None, 7.0, None, 7.0]):  # the probe answers half the time
        rig.send(start + timedelta(seconds=10 * i), "ph", value, "pH", sensor="probe")
    assert rig.tick(NOW) == [("source-faults", True)]
    assert rig.alarms.book.alarms()[0].message == "ww-1 probe: 50% of 4 readings faulted in 600 s"
    for i in range(4, 8):  # 2 of 8 faulted: a quarter, not under half of the share yet
        rig.send(start + timedelta(seconds=10 * i), "ph", 7.0, "pH", sensor="probe")
    assert rig.tick(NOW + timedelta(seconds=1)) == []
    for i in range(8, 10):
        rig.send(start + timedelta(seconds=10 * i), "ph", 7.0, "pH", sensor="probe")
    assert rig.tick(NOW + timedelta(seconds=2)) == [("source-faults", False)]


def test_an_access_point_without_clients_raises_in_opening_hours_only_once_it_lasts(rig):
    opening = datetime(2026, 6, 1, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    minute = timedelta(minutes=1)
    rig.send(opening, "clients", 0.0, "count", sensor="wifi")
    assert rig.tick(opening + minute) == []  # not yet for 120 s
    rig.send(opening + 3 * minute, "clients", 0.0, "count", sensor="wifi")
    assert rig.tick(opening + 3 * minute) == [("ap-no-clients", True)]
    rig.send(opening + 4 * minute, "clients", 6.0, "count", sensor="wifi")
    assert rig.tick(opening + 4 * minute) == [("ap-no-clients", False)]
    night = opening.replace(hour=23)
    for i in range(5):
        rig.send(night + i * minute, "clients", 0.0, "count", sensor="wifi")
    assert rig.tick(night + 5 * minute) == []


def test_a_running_mean_forgets_what_left_its_window_and_adds_levels_as_energy():
    hourly = RunningMean(timedelta(hours=1), energetic=False)
    for i in range(90):
        hourly.add(NOW + timedelta(minutes=i), float(i))
    assert hourly.samples == 60
    assert hourly.mean() == sum(range(30, 90)) / 60
    hourly.add(NOW, 1000.0)  # older than the window: no longer counts
    assert hourly.samples == 60
    sound = RunningMean(timedelta(hours=1), energetic=True)
    sound.add(NOW, 60.0)
    sound.add(NOW + timedelta(minutes=1), 70.0)
    assert sound.mean() == pytest.approx(67.4, abs=0.05)


def test_an_air_station_entering_a_poor_band_raises_and_clears_below_it(rig):
    base = NOW.replace(minute=0, second=0) - timedelta(hours=6)

    def hour(i: int, pm: float) -> None:
        at = base + timedelta(hours=i, minutes=10)
        rig.send(at, "pm2_5", pm, "µg/m³", sensor="aqms", device="air-1")

    for i in range(3):  # PM2.5 at 100 µg/m³: NowCast 100, VN_AQI 164 (bad)
        hour(i, 100.0)
    assert rig.tick(NOW) == [("air-quality", True)]
    [alarm] = rig.alarms.book.alarms()
    assert alarm.message.startswith("air-1: VN_AQI 164 (bad) for the hour from")
    assert (alarm.value, alarm.limit) == (164.0, 101.0)
    hour(3, 5.0)
    assert rig.tick(NOW + timedelta(seconds=1)) == []  # the third hour at 100: still bad
    hour(4, 5.0)
    assert rig.tick(NOW + timedelta(seconds=2)) == []  # NowCast 49, VN_AQI 99: within 10 of poor
    hour(5, 5.0)
    assert rig.tick(NOW + timedelta(seconds=3)) == [("air-quality", False)]


def test_rules_by_kind_take_the_registry_kind_and_skip_revoked_boxes(tmp_path, rig):
    rules = [{"name": "ap-offline", "type": "offline", "kinds": ["wifi_ap"]}]
    config = config_of(tmp_path, rules)
    assert config.alarms is not None
    evaluator = Evaluator(
        rig.store,
        config.alarms,
        config.stations,
        configured_limits(config),
        rig.alarms.book,
        ChannelsOf(config.alarms),
        ZoneInfo("Asia/Ho_Chi_Minh"),
        lambda: {"ap-1": "wifi_ap", "ap-2": None},  # ap-2 revoked
    )
    for device in ("ap-1", "ap-2", "ww-1"):
        rig.status("offline", NOW, device)
    assert [(c.alarm.rule, c.alarm.device) for c in evaluator.tick(NOW)] == [("ap-offline", "ap-1")]
