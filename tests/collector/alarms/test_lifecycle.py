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
from collector.compliance.report import build_report
from collector.config import CollectorConfig, ExportSettings
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

    def __init__(self, tmp_path: Path, config: CollectorConfig | None = None) -> None:
        self.config = config or config_of(tmp_path)
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


MINUTE = timedelta(minutes=1)


def test_an_hourly_mean_over_the_limit_raises_once_names_the_regulation_and_does_not_flap(rig):
    start = NOW - timedelta(minutes=90)
    for i in range(45):  # BOD5 at 40 mg/L, a sample a minute: inside column B's 50
        rig.send(start + i * MINUTE, "bod5", 40.0)
    assert rig.tick(start + 45 * MINUTE) == []
    for i in range(45, 61):  # at 80: the running mean passes 50 (50.67)
        rig.send(start + i * MINUTE, "bod5", 80.0)
    assert rig.tick(start + 61 * MINUTE) == [("effluent-limit", True)]
    [alarm] = rig.alarms.book.alarms(active_only=True)
    assert alarm.regulation == "QCVN 14:2008/BTNMT"
    assert (alarm.limit, alarm.unit, alarm.averaging) == (50.0, "mg/L", "1h")
    assert "limit 50 mg/L of QCVN 14:2008/BTNMT (column B)" in alarm.message
    for i in range(61, 77):  # hovering: the mean crosses 50 both ways, stays over 47.5
        rig.send(start + i * MINUTE, "bod5", 0.0 if i % 2 == 0 else 70.0)
        assert rig.tick(start + (i + 1) * MINUTE) == []
    for i in range(77, 81):  # back inside 47.5 on the fourth: resolved once
        rig.send(start + i * MINUTE, "bod5", 10.0)
        expected = [("effluent-limit", False)] if i == 80 else []
        assert rig.tick(start + (i + 1) * MINUTE) == expected
    assert rig.events() == [("raised", "effluent-limit"), ("resolved", "effluent-limit")]


def test_an_hour_with_under_three_quarters_of_its_samples_neither_raises_nor_resolves(rig):
    """A sample a minute promises 60 an hour; an export's hour needs 45 of them, and so
    does the running hour an alarm judges."""
    start = NOW - timedelta(minutes=200)
    for i in range(44):
        rig.send(start + i * MINUTE, "bod5", 90.0)
    assert rig.tick(start + 44 * MINUTE) == []  # 44 samples: too few to judge
    rig.send(start + 44 * MINUTE, "bod5", 90.0)
    assert rig.tick(start + 45 * MINUTE) == [("effluent-limit", True)]  # the 45th
    # The box goes quiet for two hours, then comes back clean: an hour is judged again
    # only once it holds 45 clean samples, not on the first few.
    back = start + 165 * MINUTE
    for i in range(44):
        rig.send(back + i * MINUTE, "bod5", 5.0)
        assert rig.tick(back + (i + 1) * MINUTE) == []
    rig.send(back + 44 * MINUTE, "bod5", 5.0)
    assert rig.tick(back + 45 * MINUTE) == [("effluent-limit", False)]


def test_a_station_interval_sets_the_samples_an_hour_needs(tmp_path):
    """A station sampled every 10 minutes promises 6 samples an hour: 5 make it valid."""
    config = CollectorConfig.model_validate(
        {
            "stations": {"ww-1": {"kind": "wastewater", "column": "B", "interval_s": 600}},
            "alarms": {"path": str(tmp_path / "alarms.sqlite"), "mqtt": False, "rules": RULES},
        }
    )
    rig = Rig(tmp_path, config)
    try:
        start = NOW - timedelta(minutes=50)
        for i in range(4):
            rig.send(start + i * 10 * MINUTE, "bod5", 90.0)
        assert rig.tick(start + 31 * MINUTE) == []
        rig.send(start + 40 * MINUTE, "bod5", 90.0)
        assert rig.tick(start + 41 * MINUTE) == [("effluent-limit", True)]
    finally:
        rig.close()


def test_a_restart_keeps_the_active_alarm_and_raises_no_duplicate(rig):
    for i in range(50):
        rig.send(NOW - timedelta(minutes=55 - i), "bod5", 90.0)
    assert rig.tick(NOW) == [("effluent-limit", True)]
    [before] = rig.alarms.book.alarms(active_only=True)
    rig.restart()
    assert rig.alarms.evaluator.active == 1
    assert rig.tick(NOW + timedelta(seconds=5)) == []
    assert [a.id for a in rig.alarms.book.alarms()] == [before.id]
    for i in range(50):
        rig.send(NOW + timedelta(minutes=1 + i), "bod5", 5.0)
    assert rig.tick(NOW + timedelta(minutes=51)) == [("effluent-limit", False)]
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
    assert hourly.mean(60) == sum(range(30, 90)) / 60
    assert hourly.mean(61) is None  # fewer samples than an hour needs
    hourly.add(NOW, 1000.0)  # older than the window: no longer counts
    assert hourly.samples == 60
    sound = RunningMean(timedelta(hours=1), energetic=True)
    sound.add(NOW, 60.0)
    sound.add(NOW + timedelta(minutes=1), 70.0)
    assert sound.mean(2) == pytest.approx(67.4, abs=0.05)


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
        ExportSettings(),
        lambda: {"ap-1": "wifi_ap", "ap-2": None},  # ap-2 revoked
    )
    for device in ("ap-1", "ap-2", "ww-1"):
        rig.status("offline", NOW, device)
    assert [(c.alarm.rule, c.alarm.device) for c in evaluator.tick(NOW)] == [("ap-offline", "ap-1")]


def test_an_eight_hour_mean_is_judged_with_six_valid_hours_and_equals_the_exports(tmp_path):
    """Clock hours of CO every 10 minutes (6 promised, 5 make an hour valid); the 8-hour
    mean needs 6 valid hours, as the export's, and is the export's figure to the digit."""
    rule = {"name": "co-8h", "type": "limit", "parameters": ["co"], "averaging": ["8h"]}
    rig = Rig(tmp_path, config_of(tmp_path, [rule]))
    base = NOW.replace(minute=0, second=0) - timedelta(hours=10)

    def hour(h: int, samples: int) -> None:
        for k in range(samples):
            at = base + timedelta(hours=h, minutes=10 * k)
            rig.send(at, "co", 11_000.0 + 500 * h + 100 * k, "µg/m³", "aqms", "air-1")

    try:
        for h, samples in enumerate([6, 3, 4, 6, 6, 6, 6, 6]):  # hours 1 and 2 not valid
            hour(h, samples)
        # Hour 7 under way: the 8 hours to hour 6 hold 5 valid ones, too few to judge.
        assert rig.tick(base + timedelta(hours=8)) == []
        hour(8, 1)  # completes hour 7: 6 valid hours of 8, all over 10,000 µg/m³
        assert rig.tick(base + timedelta(hours=8, minutes=1)) == [("co-8h", True)]
        [alarm] = rig.alarms.book.alarms()
        assert (alarm.averaging, alarm.limit, alarm.regulation) == (
            "8h",
            10_000.0,
            "QCVN 05:2023/BTNMT",
        )
        zone = rig.config.export.zone
        report = build_report(
            rig.store,
            rig.config.stations,
            rig.config.export,
            configured_limits(rig.config),
            # From the hour before `base`, which is on the day before when `base` is
            # local midnight (a run between 03:00 and 04:00 UTC).
            (base - timedelta(hours=1)).astimezone(zone).date(),
            (base + timedelta(hours=8)).astimezone(zone).date(),
        )
        [air] = [s for s in report.stations if s.device == "air-1"]
        eights = {
            r.mean.start: r.mean for r in air.rows if (r.parameter, r.averaging) == ("co", "8h")
        }
        assert eights[base - timedelta(hours=1)].value is None  # to hour 6: not valid there
        assert eights[base].used == 6
        assert alarm.value == pytest.approx(eights[base].value, rel=1e-12)
    finally:
        rig.close()


def test_a_day_mean_is_judged_with_eighteen_valid_hours_and_equals_the_exports(tmp_path):
    """PM2.5 every 10 minutes through a local day whose first 6 hours hold too few
    samples: the 24 hours to 22:00 have 17 valid hours, too few; the day itself has 18,
    and its mean is the export's daily mean of that day."""
    rule = {"name": "pm-24h", "type": "limit", "parameters": ["pm2_5"], "averaging": ["24h"]}
    rig = Rig(tmp_path, config_of(tmp_path, [rule]))
    zone = rig.config.export.zone
    day = (NOW - timedelta(days=2)).astimezone(zone).date()
    midnight = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)

    def hour(h: int, samples: int) -> None:
        for k in range(samples):
            at = midnight + timedelta(hours=h, minutes=10 * k)
            rig.send(at, "pm2_5", 50.0 + h + k, "µg/m³", "pm", "air-1")

    try:
        for h in range(24):
            hour(h, 4 if h < 6 else 6)
        assert rig.tick(midnight + timedelta(hours=24)) == []
        hour(24, 1)  # completes the day's last hour
        assert rig.tick(midnight + timedelta(hours=24, minutes=1)) == [("pm-24h", True)]
        [alarm] = rig.alarms.book.alarms()
        assert (alarm.averaging, alarm.limit) == ("24h", 45.0)
        report = build_report(
            rig.store,
            rig.config.stations,
            rig.config.export,
            configured_limits(rig.config),
            day,
            day,
        )
        [air] = [s for s in report.stations if s.device == "air-1"]
        [daily] = [r.mean for r in air.rows if (r.parameter, r.averaging) == ("pm2_5", "24h")]
        assert daily.used == 18
        assert alarm.value == pytest.approx(daily.value, rel=1e-12)
    finally:
        rig.close()


def test_two_limit_rules_on_one_series_count_each_sample_once(tmp_path):
    """44 samples of an hour that needs 45 stay too few however many rules judge them."""
    rules = [
        {"name": "bod-limit", "type": "limit", "parameters": ["bod5"]},
        {"name": "any-limit", "type": "limit", "kinds": ["wastewater"]},
    ]
    rig = Rig(tmp_path, config_of(tmp_path, rules))
    try:
        start = NOW - timedelta(minutes=50)
        for i in range(44):
            rig.send(start + i * MINUTE, "bod5", 90.0)
        assert rig.tick(start + 44 * MINUTE) == []
        rig.send(start + 44 * MINUTE, "bod5", 90.0)
        assert sorted(rig.tick(start + 45 * MINUTE)) == [("any-limit", True), ("bod-limit", True)]
    finally:
        rig.close()
