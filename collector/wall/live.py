"""The wall's live feed: one hub in the collector that every open screen listens to.

Twelve screens and a few desks must not each ask the store what changed: that is the
polling storm the wall is built to avoid. The ingest hands the hub each batch once the
store has committed it (`committed`, a list append: nothing is decoded while no screen is
open); every `FLUSH_S` the hub decodes what came, keeps the newest value of each series
and sends the changes to every screen at once, encoded once. A wall shows what is true
now, so of the messages a topic brought since the last flush only the newest is decoded:
a box replaying an hour of backlog, or a burst from the whole fleet, costs the hub one
message per topic, not thousands. The devices' states,
the outbox backlogs, police alerts and active alarms are refreshed every `REFRESH_S` with
one read for all screens, and sent only when they changed.

A screen that falls `QUEUE_EVENTS` events (a few seconds) behind is not cut off: its
queue is emptied and it is sent a fresh snapshot, which holds the newest of everything it
missed. A slow screen is never more than those few seconds stale, and never slows the
others or the ingest.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alarms.book import AlarmBook
from collector.arrivals import Arrival, InvalidMessage, validated
from collector.config import CollectorConfig
from collector.fleet.registry import Registry
from collector.police.service import Police
from collector.query import LatestQuery
from collector.stores.base import Store
from iotwire.messages import Batch, Health, Message, Quality, Status, Telemetry

log = logging.getLogger(__name__)
FLUSH_S = 0.5
REFRESH_S = 5.0
QUEUE_EVENTS = 8
ALERTS_SHOWN = 50
ALERTS_WINDOW = timedelta(hours=24)
# What a screen of a role other than police learns of an alert: that it happened, where.
_ALERT_PUBLIC = ("id", "ts", "site", "device", "camera", "priority", "pole")

Json = dict[str, Any]
SeriesKey = tuple[str, str, str]


@dataclass(eq=False)
class Screen:
    """One open stream: the role decides what it is sent; `behind` asks for a snapshot."""

    role: str
    queue: asyncio.Queue[tuple[str, str]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_EVENTS)
    )
    behind: bool = False


@dataclass
class _Encoded:
    """An event's data as sent to police and to everyone else (the same when no plate)."""

    police: str
    others: str

    @classmethod
    def same(cls, data: object) -> "_Encoded":
        text = json.dumps(data, separators=(",", ":"))
        return cls(text, text)


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat() if ts is not None else None


def _sample(
    device: str, sensor: str, parameter: str, value: float, unit: str, ts: datetime
) -> Json:
    """A value as screens get it: only good values are shown, so no quality is sent."""
    return {
        "device": device,
        "sensor": sensor,
        "parameter": parameter,
        "value": value,
        "unit": unit,
        "ts": _iso(ts),
    }


def _samples_of(message: Message) -> list[Json]:
    if not isinstance(message, Telemetry):
        return []
    return [
        _sample(message.device, sample.sensor, r.parameter, r.value, r.unit, sample.ts)
        for sample in message.samples
        for r in sample.readings
        if r.quality is Quality.OK and r.value is not None
    ]


class LiveFeed:
    def __init__(
        self,
        store: Store,
        settings: CollectorConfig,
        registry: Registry | None = None,
        police: Police | None = None,
        alarms: AlarmBook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._settings = settings
        self._registry = registry
        self._police = police
        self._alarms = alarms
        self._clock = clock
        self._screens: set[Screen] = set()
        self._pending: dict[str, bytes] = {}  # topic -> its newest payload
        self._latest: dict[SeriesKey, Json] = {}
        self._health: dict[str, Json] = {}
        self._devices: list[Json] = []
        self._alerts: list[Json] = []
        self._alarm_rows: list[Json] = []
        self._primed = False
        self._wake = asyncio.Event()
        self.sent_events = 0

    @property
    def screens(self) -> int:
        return len(self._screens)

    def committed(self, batch: list[Arrival]) -> None:
        """A batch the store holds now; kept for the next flush only while someone looks."""
        if self._screens:
            for topic, payload, _ in batch:
                self._pending[topic] = payload
            self._wake.set()

    def open(self, role: str) -> Screen:
        screen = Screen(role)
        self._screens.add(screen)
        screen.behind = True  # its first event is the snapshot
        self._wake.set()
        return screen

    def close(self, screen: Screen) -> None:
        self._screens.discard(screen)

    def snapshot(self, role: str) -> str:
        """Everything a screen shows, from the hub's memory: opening a screen asks the
        store nothing."""
        police = role == "police"
        return json.dumps(
            {
                "devices": self._devices,
                "latest": list(self._latest.values()),
                "health": self._health,
                "alerts": self._alerts if police else [_public(a) for a in self._alerts],
                "alarms": [a for a in self._alarm_rows if role in a["roles"]],
                "now": _iso(self._clock()),
            },
            separators=(",", ":"),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Flush and refresh while the collector runs; idle while no screen is open."""
        stopping = asyncio.create_task(stop.wait())
        refreshed = 0.0
        try:
            while not stop.is_set():
                waking = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {waking, stopping}, timeout=REFRESH_S, return_when=asyncio.FIRST_COMPLETED
                )
                waking.cancel()
                if stop.is_set():
                    break
                self._wake.clear()
                if not self._screens:
                    self._pending.clear()
                    continue
                try:
                    if not self._primed:
                        await asyncio.to_thread(self._prime)
                    if time.monotonic() - refreshed >= REFRESH_S:
                        await self._refresh()
                        refreshed = time.monotonic()
                    await self._flush()
                except Exception:
                    log.exception("the wall's feed could not be refreshed; trying again")
                await asyncio.wait({stopping}, timeout=FLUSH_S)
        finally:
            stopping.cancel()

    def _prime(self) -> None:
        for row in self._store.latest(LatestQuery()):
            if row.value is not None:
                self._latest[(row.device, row.sensor, row.parameter)] = _sample(
                    row.device, row.sensor, row.parameter, row.value, row.unit, row.ts
                )
        self._primed = True

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        samples, health, statuses = (
            await asyncio.to_thread(self._decode, pending) if pending else ([], {}, False)
        )
        if statuses:  # a box came or went: its dot changes now, not at the next refresh
            await self._refresh()
        fresh = [s for s in samples if self._newer(s)]
        for sample in fresh:
            self._latest[(sample["device"], sample["sensor"], sample["parameter"])] = sample
        self._health.update(health)
        for screen in list(self._screens):
            if screen.behind:
                screen.behind = False
                self._put(screen, "snapshot", self.snapshot(screen.role))
        if fresh:
            self._send("samples", _Encoded.same(fresh))
        if health:
            self._send("health", _Encoded.same(health))

    def _newer(self, sample: Json) -> bool:
        """A value newer than the series' last one: a backlog replayed after an outage
        does not take the screen back in time."""
        held = self._latest.get((sample["device"], sample["sensor"], sample["parameter"]))
        return held is None or sample["ts"] >= held["ts"]

    def _decode(self, pending: dict[str, bytes]) -> tuple[list[Json], dict[str, Json], bool]:
        """The batch's readings, its boxes' outbox figures, and whether a box's status
        changed; in a thread, so it touches nothing of the hub's."""
        prefix = self._settings.broker.topic_prefix
        samples: list[Json] = []
        health: dict[str, Json] = {}
        statuses = False
        for topic, payload in pending.items():
            try:
                _, message = validated(topic, payload, prefix)
            except InvalidMessage:
                continue  # the committer counted it
            inner = message.messages if isinstance(message, Batch) else (message,)
            for m in inner:
                samples.extend(_samples_of(m))
                if isinstance(m, Health):
                    health[m.device] = {
                        "outbox_depth": m.outbox_depth,
                        "outbox_dropped": m.outbox_dropped,
                        "ts": _iso(m.ts),
                    }
                statuses = statuses or isinstance(m, Status)
        return samples, health, statuses

    async def _refresh(self) -> None:
        devices = await asyncio.to_thread(self._device_rows)
        if devices != self._devices:
            self._devices = devices
            self._send("devices", _Encoded.same(devices))
        if self._police is not None:
            alerts = await asyncio.to_thread(self._alert_rows, self._police)
            if alerts != self._alerts:
                self._alerts = alerts
                self._send(
                    "alerts",
                    _Encoded(
                        json.dumps(alerts, separators=(",", ":")),
                        json.dumps([_public(a) for a in alerts], separators=(",", ":")),
                    ),
                )
        if self._alarms is not None:
            rows = await asyncio.to_thread(self._alarm_list, self._alarms)
            if rows != self._alarm_rows:
                self._alarm_rows = rows
                self._send_alarms(rows)

    def _device_rows(self) -> list[Json]:
        """Every registered box, seen or not, and every box seen, registered or not: the
        map must show the box that never came as well as the one nobody registered."""
        now = self._clock()
        silent_after = timedelta(seconds=self._settings.ingest.silent_after_s)
        seen = {d.device: d for d in self._store.devices()}
        registered = {r.device: r for r in self._registry.all()} if self._registry else {}
        stations = self._settings.stations
        rows = []
        for name in sorted(seen.keys() | registered.keys()):
            d, r = seen.get(name), registered.get(name)
            station = stations.get(name)
            kind = r.kind.value if r else (station.kind if station else "")
            rows.append(
                {
                    "device": name,
                    "site": d.site if d else (r.site if r else ""),
                    "kind": kind,
                    "name": (r.name if r else "") or (station.name if station else "") or name,
                    "lat": r.location.lat if r and r.location else None,
                    "lon": r.location.lon if r and r.location else None,
                    "state": d.state_at(now, silent_after) if d else "never seen",
                    "last_seen": _iso(d.last_seen) if d else None,
                    "version": d.version if d else "",
                    "gaps": d.gaps if d else 0,
                    "resets": d.state_resets if d else 0,
                    "revoked": r is not None and r.revoked is not None,
                }
            )
        return rows

    def _alert_rows(self, police: Police) -> list[Json]:
        since = self._clock() - ALERTS_WINDOW
        rows = []
        for record in police.alerts.recent(since, limit=ALERTS_SHOWN):
            row = record.alert.model_dump(mode="json")
            row["acked_by"] = record.acked_by
            row["acked_at"] = _iso(record.acked_at)
            rows.append(row)
        return rows

    @staticmethod
    def _alarm_list(book: AlarmBook) -> list[Json]:
        return [
            {
                "id": a.id,
                "rule": a.rule,
                "severity": a.severity,
                "roles": list(a.roles),
                "device": a.device,
                "message": a.message,
                # What a screen puts into its own words when the message is not English.
                "rule_type": a.rule_type,
                "subject": a.subject,
                "value": a.value,
                "limit": a.limit,
                "unit": a.unit,
                "regulation": a.regulation,
                "clause": a.clause,
                "averaging": a.averaging,
                "state": a.state,
                "raised_at": _iso(a.raised_at),
                "acked_by": a.acked_by,
            }
            for a in book.alarms(active_only=True)
        ]

    def _send_alarms(self, rows: list[Json]) -> None:
        for screen in list(self._screens):
            shown = [a for a in rows if screen.role in a["roles"]]
            self._put(screen, "alarms", json.dumps(shown, separators=(",", ":")))

    def _send(self, event: str, data: _Encoded) -> None:
        for screen in list(self._screens):
            self._put(screen, event, data.police if screen.role == "police" else data.others)

    def _put(self, screen: Screen, event: str, data: str) -> None:
        try:
            screen.queue.put_nowait((event, data))
            self.sent_events += 1
        except asyncio.QueueFull:
            log.warning("a wall screen (%s) fell behind; it gets a fresh snapshot", screen.role)
            while not screen.queue.empty():
                screen.queue.get_nowait()
            screen.behind = True
            self._wake.set()


def _public(alert: Json) -> Json:
    return {k: alert.get(k) for k in _ALERT_PUBLIC}
