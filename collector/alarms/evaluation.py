"""The rules applied to what the store newly holds, a tick at a time.

Each tick asks the store two things: the devices' state (one row a box: status, last
heard, gaps), and the readings sampled since the newest one taken in (or now, if that is
earlier: a clock running ahead must not hide the other boxes), less `late_s` so a box whose
message took longer than another's still counts; a reading already taken into its series
is skipped. A reading sampled longer than `late_s` before the newest (a backlog replayed
after an outage) is not judged: it is history, which the exports judge. Readings feed
running means per series (`running.py`); only the series that got new readings are
judged again, and a mean is judged only when it is valid as an export's mean is (enough
of the samples the series' sampling interval promises, enough valid hours): a mean of too
few samples neither raises nor resolves an alarm. The interval is the station's
`interval_s`, else the median spacing of the series' latest readings, as the exports infer
it. Where an export without a spacing assumes an hour (one sample makes an hour valid), a
series' first reading here is not judged: it is the start of a stream, not a day's
single sample. Nothing is re-read from the whole store: the first tick after a start
reads back the longest window a rule needs, once.

Outbox drops are judged on the latest health each box reported on the wire (`health.py`),
not on the store, whose protocol reads no health back.

Where evaluation stands (the newest reading judged, each box's gap count and reported
drops) is kept in the alarm book, so a restart neither raises again what was raised nor
judges a sample twice.
"""

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from collector.alarms.air_quality import HOUR, KEPT_HOURS, StationHours, rate
from collector.alarms.book import Alarm, AlarmBook, Silence
from collector.alarms.events import CLEAR, HOLD, Breach, Finding, Subject
from collector.alarms.health import Reported
from collector.alarms.judging import in_mass, judge_mean, judge_threshold, limits_for
from collector.alarms.running import CLOCK_HOURS, RUNNING, ClockHours, FaultShare, RunningMean
from collector.compliance.averages import infer_interval_s, is_level, needed_samples
from collector.compliance.limits import Limit, LimitTable
from collector.config import (
    AlarmRule,
    AlarmSettings,
    AqiRule,
    ExportSettings,
    FaultsRule,
    GapsRule,
    LimitRule,
    OfflineRule,
    OutboxDropsRule,
    SilentRule,
    StationSettings,
    ThresholdRule,
)
from collector.i18n import services
from collector.query import DeviceRow, ReadingQuery, ReadingRow
from collector.stores.base import Store

_ = services.gettext

log = logging.getLogger(__name__)
PAGE_ROWS = 10_000
JUDGED_UNTIL = "judged_until"
REGISTRY_EVERY_S = 60.0
MAX_LOOKUPS = 100_000  # limits in force kept per series and day; cleared past this many
SPACING_ROWS = 17  # a series' latest readings kept: 16 spacings give its interval
DeviceRule = OfflineRule | SilentRule | GapsRule
ReadingRule = LimitRule | ThresholdRule | FaultsRule | AqiRule
SeriesKey = tuple[str, str, str, str]  # device, sensor, parameter, unit as measured


@dataclass
class Series:
    """One series' means (the running hour; clock hours for the 8-hour and 24-hour
    means), the newest sample taken in, its latest readings, whose spacing is its
    sampling interval, and the clock hour each rule last judged it on, by averaging."""

    newest: datetime
    recent: deque[ReadingRow] = field(default_factory=lambda: deque(maxlen=SPACING_ROWS))
    running: RunningMean | None = None
    clock: ClockHours | None = None
    judged: dict[tuple[str, str], datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """An alarm raised or resolved by a tick, for the senders and the log."""

    alarm: Alarm
    raised: bool


class Evaluator:
    """The rules of the `alarms` section over one store. It holds the active alarms (read
    from the book at the start), the running means, fault shares and VN_AQI hours of the
    series it has seen, and the newest reading taken in; a tick is called from one
    thread at a time."""

    def __init__(
        self,
        store: Store,
        settings: AlarmSettings,
        stations: dict[str, StationSettings],
        limits: LimitTable,
        book: AlarmBook,
        channels: Callable[[AlarmRule], Sequence[str]],
        export: ExportSettings,
        registered: Callable[[], dict[str, str | None]] = dict,
        reported: Callable[[], dict[str, Reported]] = dict,
    ) -> None:
        self._store = store
        self._settings = settings
        self._stations = stations
        self._limits = limits
        self._book = book
        self._channels = channels
        self._export = export
        self._zone = export.zone
        self._registered = registered
        self._reported = reported
        self._drops: dict[str, Dropped] = {}
        self._boxes = registered()
        self._boxes_read = time.monotonic()
        self._gap_counts: dict[str, str] = {}
        self._rules = {r.name: r for r in settings.rules}
        self._active = book.active()
        self._series: dict[SeriesKey, Series] = {}
        self._faults: dict[tuple[str, str, str], FaultShare] = {}  # rule, device, sensor
        self._beyond_since: dict[tuple[str, str], datetime] = {}  # rule, subject
        self._air: dict[str, StationHours] = {}
        self._limits_in_force: dict[tuple[str, str, str, str, date], list[Limit]] = {}
        self._devices = self._reading_devices()
        judged = book.position(JUDGED_UNTIL)
        self._judged_until = datetime.fromisoformat(judged) if judged else None
        self._newest: datetime | None = None
        self.raised = 0
        self.resolved = 0

    @property
    def active(self) -> int:
        return len(self._active)

    def _watches(self, rule: AlarmRule, device: str) -> bool:
        """Whether the rule judges the box: one of its devices or kinds, and not revoked
        (a revoked box is offline for good, and no news)."""
        if rule.devices and device not in rule.devices:
            return False
        if device in self._boxes and self._boxes[device] is None:
            return False
        station = self._stations.get(device)
        kinds = {station.kind if station else None, self._boxes.get(device)}
        return not rule.kinds or bool(kinds & set(rule.kinds))

    def _refresh_boxes(self) -> None:
        """The registry's kinds, read again every `REGISTRY_EVERY_S`: boxes are imported
        and revoked while the collector runs."""
        if time.monotonic() - self._boxes_read < REGISTRY_EVERY_S:
            return
        self._boxes = self._registered()
        self._boxes_read = time.monotonic()
        self._devices = self._reading_devices()

    def _reading_devices(self) -> tuple[str, ...] | None:
        """The devices whose readings a rule judges; None for every device."""
        found: set[str] = set()
        for rule in self._settings.rules:
            if isinstance(rule, LimitRule | AqiRule):
                found |= {d for d in self._stations if self._watches(rule, d)}
            elif isinstance(rule, ThresholdRule | FaultsRule):
                if not rule.devices and not rule.kinds:
                    return None
                known = (*rule.devices, *self._stations, *self._boxes)
                found |= {d for d in known if self._watches(rule, d)}
        return tuple(sorted(found))

    def retire_removed_rules(self, now: datetime) -> list[Change]:
        """Active alarms of a rule no longer in the config are resolved at the start:
        nothing would ever judge them again."""
        changes = []
        for key, alarm in list(self._active.items()):
            if alarm.rule not in self._rules:
                resolved = self._book.resolve(alarm, now, _("rule removed from the config"), ())
                del self._active[key]
                changes.append(Change(resolved, raised=False))
        return changes

    def tick(self, now: datetime) -> list[Change]:
        """One evaluation: the findings of every rule on what is new, applied in order."""
        self._refresh_boxes()
        silences = self._book.silences(now)
        findings: list[tuple[AlarmRule, Subject, Finding]] = []
        device_rules = [r for r in self._settings.rules if isinstance(r, DeviceRule)]
        positions: dict[str, str] = {}
        if device_rules:
            devices = self._store.devices()
            findings += self._device_findings(device_rules, devices, now, positions)
        drop_rules = [r for r in self._settings.rules if isinstance(r, OutboxDropsRule)]
        if drop_rules:
            findings += self._drop_findings(drop_rules, now, positions)
        findings += self._reading_findings(now)
        if self._newest is not None:
            positions[JUDGED_UNTIL] = self._newest.isoformat()
        changes = [c for rule, s, f in findings if (c := self._apply(rule, s, f, silences, now))]
        self._book.set_positions(positions)
        return changes

    def _apply(
        self,
        rule: AlarmRule,
        subject: Subject,
        finding: Finding,
        silences: list[Silence],
        now: datetime,
    ) -> Change | None:
        key = (rule.name, subject.name)
        active = self._active.get(key)
        if isinstance(finding, Breach):
            if active is not None or any(s.covers(rule.name, subject.device) for s in silences):
                return None
            raised = self._book.raise_alarm(rule, subject, finding, now, self._channels(rule))
            if raised is None:  # another writer raised it: take that one as ours
                self._active = self._book.active()
                return None
            self._active[key] = raised
            self.raised += 1
            log.warning("alarm %s raised: %s", rule.name, finding.message)
            return Change(raised, raised=True)
        if finding is CLEAR and active is not None:
            cleared = _("condition cleared")
            resolved = self._book.resolve(active, now, cleared, self._channels(rule))
            del self._active[key]
            self.resolved += 1
            log.info("alarm %s resolved: %s", rule.name, subject.name)
            return Change(resolved, raised=False)
        return None

    # Boxes: offline, silent, gaps.

    def _device_findings(
        self,
        rules: list[DeviceRule],
        devices: list[DeviceRow],
        now: datetime,
        positions: dict[str, str],
    ) -> Iterator[tuple[AlarmRule, Subject, Finding]]:
        for row in devices:
            for rule in rules:
                if not self._watches(rule, row.device):
                    continue
                subject = Subject(rule.name, row.device, row.device)
                if isinstance(rule, OfflineRule):
                    yield rule, subject, _offline(row)
                elif isinstance(rule, SilentRule):
                    yield rule, subject, _silent(row, now, rule.after_s)
                else:
                    yield rule, subject, self._gaps(rule, row, now, positions)

    def _gaps(
        self, rule: GapsRule, row: DeviceRow, now: datetime, positions: dict[str, str]
    ) -> Finding:
        """New gaps since the count last seen raise; a quiet `quiet_s` clears. The first
        count seen of a box is its baseline: gaps older than the alarms are not news."""
        name = f"gaps:{row.device}"
        kept = self._gap_counts.get(name) or self._book.position(name)
        if kept is None:
            positions[name] = self._gap_counts[name] = f"{row.gaps} {now.isoformat()}"
            return HOLD
        self._gap_counts[name] = kept
        count, grown = kept.split(" ", 1)
        if row.gaps > int(count):
            positions[name] = self._gap_counts[name] = f"{row.gaps} {now.isoformat()}"
            new = row.gaps - int(count)
            message = _("{device}: {count} messages missing from its stream").format(
                device=row.device, count=new
            )
            return Breach(message, float(new))
        if now - datetime.fromisoformat(grown) > timedelta(seconds=rule.quiet_s):
            return CLEAR
        return HOLD

    def _drop_findings(
        self, rules: list[OutboxDropsRule], now: datetime, positions: dict[str, str]
    ) -> Iterator[tuple[AlarmRule, Subject, Finding]]:
        """Each box that reported health since the start, and each box with an active
        alarm that has not yet: its drops stopped growing all the same, and the alarm
        must clear after a restart even if the box never reports again."""
        reported = self._reported()
        names = {rule.name for rule in rules}
        active = {alarm.device for alarm in self._active.values() if alarm.rule in names}
        for device in sorted(reported.keys() | active):
            for rule in rules:
                if self._watches(rule, device):
                    subject = Subject(rule.name, device, device)
                    report = reported.get(device)
                    yield rule, subject, self._dropped(rule, device, report, now, positions)

    def _dropped(
        self,
        rule: OutboxDropsRule,
        device: str,
        report: Reported | None,
        now: datetime,
        positions: dict[str, str],
    ) -> Finding:
        """Drops reported since the count last seen raise; a quiet `quiet_s` clears. The
        first count seen of a box is its baseline: drops older than the alarms are not
        news. A new outbox (a new epoch) counts from nought, so all its drops are new."""
        name = f"drops:{rule.name}:{device}"
        kept = self._drops.get(name)
        if kept is None and (text := self._book.position(name)) is not None:
            kept = self._drops[name] = Dropped.parse(text)
        if report is None:  # an active alarm's box not heard since the start
            quiet = kept is not None and now - kept.grown > timedelta(seconds=rule.quiet_s)
            return CLEAR if quiet else HOLD
        if kept is None:
            self._drops[name] = Dropped(report.epoch, report.dropped, now)
            positions[name] = self._drops[name].text()
            return HOLD
        new = report.dropped - (kept.dropped if report.epoch == kept.epoch else 0)
        if (report.epoch, report.dropped) != (kept.epoch, kept.dropped):
            grown = now if new > 0 else kept.grown
            self._drops[name] = Dropped(report.epoch, report.dropped, grown)
            positions[name] = self._drops[name].text()
        if new > 0:
            message = _(
                "{device}: its outbox dropped {count} messages it never sent"
                " ({total} since it was made, health of {health})"
            ).format(device=device, count=new, total=report.dropped, health=report.ts.isoformat())
            return Breach(message, float(new))
        return CLEAR if now - kept.grown > timedelta(seconds=rule.quiet_s) else HOLD

    # Readings: limits and thresholds.

    def _new_rows(self, now: datetime) -> Iterator[ReadingRow]:
        """Readings sampled since the newest taken in, less `late_s`, page by page: the
        first tick, reading a day back for a 24-hour mean, holds one page at a time."""
        devices = self._devices
        if devices == ():
            return
        late = timedelta(seconds=self._settings.late_s)
        if self._newest is not None:  # a box whose clock runs ahead must not hide the rest
            start = min(self._newest, now) - late
        else:
            start = now - max([late, *self._widths()])
        while True:
            every = () if devices is None else devices
            page = self._store.query(ReadingQuery(start=start, devices=every, limit=PAGE_ROWS))
            yield from page
            if len(page) < PAGE_ROWS or page[-1].ts == start:
                return
            start = page[-1].ts

    def _widths(self) -> list[timedelta]:
        """How far back the first tick reads: the longest mean a limit rule keeps (the
        clock hours of an 8-hour or 24-hour mean and the hour under way), and the 12
        hours of NowCast and the hour under way for VN_AQI."""
        widths = [
            RUNNING if a == "1h" else (CLOCK_HOURS[a] + 1) * HOUR
            for r in self._settings.rules
            if isinstance(r, LimitRule)
            for a in r.averaging
        ]
        if any(isinstance(r, AqiRule) for r in self._settings.rules):
            widths.append(KEPT_HOURS * HOUR)
        return widths

    def _reading_findings(self, now: datetime) -> list[tuple[AlarmRule, Subject, Finding]]:
        rules = [r for r in self._settings.rules if isinstance(r, ReadingRule)]
        if not rules:
            return []
        findings: list[tuple[AlarmRule, Subject, Finding]] = []
        touched: dict[SeriesKey, ReadingRow] = {}
        sources: dict[tuple[str, str, str], FaultsRule] = {}  # rule, device, sensor
        limit_rules = [r for r in rules if isinstance(r, LimitRule)]
        for row in self._new_rows(now):
            key = (row.device, row.sensor, row.parameter, row.unit)
            series = self._series.get(key)
            if series is not None and row.ts <= series.newest:
                continue
            if series is None:
                series = self._series[key] = Series(row.ts)
            series.newest = row.ts
            series.recent.append(row)
            self._newest = max(self._newest or row.ts, row.ts)
            fresh = self._judged_until is None or row.ts > self._judged_until
            for rule in rules:
                if not self._watches(rule, row.device):
                    continue
                if isinstance(rule, FaultsRule):
                    if self._count_fault(rule, row):
                        sources[(rule.name, row.device, row.sensor)] = rule
                elif row.quality != "ok" or row.value is None:
                    continue
                elif isinstance(rule, ThresholdRule):
                    if fresh and rule.parameter == row.parameter:
                        findings.append((rule, *self._threshold(rule, row)))
                elif isinstance(rule, AqiRule):
                    self._feed_air(row)
            if row.quality == "ok" and self._feed(limit_rules, series, row):
                touched[key] = row
        for key, row in touched.items():
            for rule in limit_rules:
                if self._watches(rule, row.device):
                    findings += self._limit_findings(rule, self._series[key], row)
        findings += [
            self._fault_finding(rule, d, sensor) for (_, d, sensor), rule in sources.items()
        ]
        findings += self._air_findings([r for r in rules if isinstance(r, AqiRule)])
        return findings

    def _feed_air(self, row: ReadingRow) -> None:
        station = self._stations.get(row.device)
        if station is None or not station.aqi or row.value is None:
            return
        unit, value = in_mass(station, row.parameter, row.unit, row.value)
        hours = self._air.get(row.device)
        if hours is None:
            hours = self._air[row.device] = StationHours()
        hours.add(row.parameter, unit, row.ts, value)

    def _air_findings(self, rules: list[AqiRule]) -> list[tuple[AlarmRule, Subject, Finding]]:
        """Each station's hours completed since the last tick, rated once per rule."""
        findings: list[tuple[AlarmRule, Subject, Finding]] = []
        for device, hours in self._air.items():
            hour = hours.completed()
            if hour is None:
                continue
            for rule in rules:
                if self._watches(rule, device):
                    subject = Subject(rule.name, device, device)
                    findings.append((rule, subject, rate(rule, device, hours, hour)))
        return findings

    def _count_fault(self, rule: FaultsRule, row: ReadingRow) -> bool:
        """Count a reading in its source's window; False when the rule ignores the source."""
        if rule.sensors and row.sensor not in rule.sensors:
            return False
        key = (rule.name, row.device, row.sensor)
        window = self._faults.get(key)
        if window is None:
            window = self._faults[key] = FaultShare(timedelta(seconds=rule.window_s))
        window.add(row.ts, row.quality == "fault")
        return True

    def _fault_finding(
        self, rule: FaultsRule, device: str, sensor: str
    ) -> tuple[AlarmRule, Subject, Finding]:
        window = self._faults[(rule.name, device, sensor)]
        subject = Subject(rule.name, device, f"{device}/{sensor}")
        share = window.share()
        if window.readings < rule.min_readings:
            return rule, subject, HOLD
        if share >= rule.share:
            message = _(
                "{device} {sensor}: {share} of {readings} readings faulted in {seconds} s"
            ).format(
                device=device,
                sensor=sensor,
                share=f"{share:.0%}",
                readings=window.readings,
                seconds=f"{rule.window_s:.0f}",
            )
            return rule, subject, Breach(message, share, rule.share)
        return rule, subject, CLEAR if share < rule.share / 2 else HOLD

    def _threshold(self, rule: ThresholdRule, row: ReadingRow) -> tuple[Subject, Finding]:
        """The raw value against the rule's bounds, in its hours; a breach counts only
        once it has lasted `for_s`."""
        subject = Subject(rule.name, row.device, f"{row.device}/{row.sensor}/{row.parameter}")
        if not rule.in_hours(row.ts.astimezone(self._zone).time()):
            self._beyond_since.pop((rule.name, subject.name), None)
            return subject, CLEAR
        value = row.value if row.value is not None else 0.0
        label = f"{row.device} {row.sensor}/{row.parameter}"
        finding = judge_threshold(label, value, row.unit, rule.min, rule.max, rule.hysteresis)
        if not isinstance(finding, Breach):
            self._beyond_since.pop((rule.name, subject.name), None)
            return subject, finding
        since = self._beyond_since.setdefault((rule.name, subject.name), row.ts)
        if (row.ts - since).total_seconds() < rule.for_s:
            return subject, HOLD
        return subject, finding

    def _feed(self, rules: list[LimitRule], series: Series, row: ReadingRow) -> bool:
        """Add a reading, once, to the means the limit rules watching its box need;
        False when no limit in force judges the series."""
        station = self._stations.get(row.device)
        if station is None or row.value is None:
            return False
        unit, value = in_mass(station, row.parameter, row.unit, row.value)
        day = row.ts.astimezone(self._zone).date()
        wanted = {
            averaging
            for rule in rules
            if self._watches(rule, row.device)
            and (not rule.parameters or row.parameter in rule.parameters)
            for averaging in rule.averaging
        }
        in_force = {
            a for a in wanted if self._in_force(row.device, station, row.parameter, unit, a, day)
        }
        if "1h" in in_force:
            if series.running is None:
                series.running = RunningMean(RUNNING, is_level(unit))
            series.running.add(row.ts, value)
        if in_force & CLOCK_HOURS.keys():
            if series.clock is None:
                series.clock = ClockHours(max(CLOCK_HOURS.values()), is_level(unit))
            series.clock.add(row.ts, value)
        return bool(in_force)

    def _in_force(
        self,
        device: str,
        station: StationSettings,
        parameter: str,
        unit: str,
        averaging: str,
        day: date,
    ) -> list[Limit]:
        """The limits judging a series' mean on `day`, looked up once a day per series."""
        key = (device, parameter, unit, averaging, day)
        found = self._limits_in_force.get(key)
        if found is None:
            if len(self._limits_in_force) > MAX_LOOKUPS:
                self._limits_in_force.clear()
            found = limits_for(self._limits, station, parameter, unit, averaging, day)
            self._limits_in_force[key] = found
        return found

    def _limit_findings(
        self, rule: LimitRule, series: Series, row: ReadingRow
    ) -> Iterator[tuple[AlarmRule, Subject, Finding]]:
        """The rule's findings on the series' valid means: the running hour at each new
        reading, the 8-hour and 24-hour means once per clock hour completed."""
        station = self._stations[row.device]
        if rule.parameters and row.parameter not in rule.parameters:
            return
        interval = station.interval_s or infer_interval_s(series.recent)
        if interval is None:
            return
        unit = in_mass(station, row.parameter, row.unit, 0.0)[0]
        share = self._export.hour_min_share
        for averaging in rule.averaging:
            if averaging == "1h":
                running = series.running
                mean = running.mean(needed_samples(interval, share)) if running else None
                day = row.ts.astimezone(self._zone).date()
            else:
                clock = series.clock
                hour = clock.completed if clock is not None else None
                if (
                    clock is None
                    or hour is None
                    or series.judged.get((rule.name, averaging)) == hour
                ):
                    continue  # no hour completed since this rule judged the series
                series.judged[(rule.name, averaging)] = hour
                least = (
                    self._export.eight_hour_min_hours
                    if averaging == "8h"
                    else self._export.day_min_hours
                )
                mean = clock.mean(averaging, hour, interval, share, least).value
                day = hour.astimezone(self._zone).date()
            if mean is None:
                continue
            limits = self._in_force(row.device, station, row.parameter, unit, averaging, day)
            if not limits:
                continue
            name = f"{row.device}/{row.sensor}/{row.parameter}/{averaging}"
            label = f"{row.device} {row.sensor}/{row.parameter}"
            finding = judge_mean(limits, station, label, unit, averaging, mean, rule.hysteresis)
            yield rule, Subject(rule.name, row.device, name), finding


@dataclass(frozen=True)
class Dropped:
    """A box's drop count as last judged, and when it last grew; kept in the book."""

    epoch: str
    dropped: int
    grown: datetime

    def text(self) -> str:
        return json.dumps([self.epoch, self.dropped, self.grown.isoformat()])

    @classmethod
    def parse(cls, text: str) -> "Dropped":
        epoch, dropped, grown = json.loads(text)
        return cls(str(epoch), int(dropped), datetime.fromisoformat(grown))


def _offline(row: DeviceRow) -> Finding:
    if row.state == "offline":
        return Breach(
            _("{device} is offline: its last will or its stop said so").format(device=row.device)
        )
    return CLEAR if row.state == "online" else HOLD


def _silent(row: DeviceRow, now: datetime, after_s: float) -> Finding:
    quiet = None if row.last_seen is None else (now - row.last_seen).total_seconds()
    if row.state == "online" and (quiet is None or quiet > after_s):
        message = (
            _("{device} is online but silent: nothing heard ever")
            if quiet is None
            else _("{device} is online but silent: nothing heard for {seconds} s")
        ).format(device=row.device, seconds=f"{quiet or 0:.0f}")
        return Breach(message, quiet)
    return CLEAR if quiet is not None and quiet <= after_s else HOLD
