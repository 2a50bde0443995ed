"""Alerts to the police units covering the pole, and to the duty desk when none acts.

A unit covers an area of the map, a list of poles, or both (`alerts.units`). An alert
is dispatched, in the transaction that raises it, to every unit covering its pole: one
`dispatches` row per unit and one delivery row per contact channel (its MQTT topic, its
webhook), so dispatching is as crash-proof as alerting. A unit acknowledges its dispatch
(API or CLI). An alert no unit acknowledged within `escalate_after_s`, or one at a pole
no unit covers, is escalated to the duty desk: recorded, audited and published on its
own topic, once.
"""

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.config import UnitSettings
from collector.fleet.registry import RegisteredDevice
from collector.i18n import services
from collector.police import audit, deliveries
from collector.police.areas import Area, area
from collector.police.database import PoliceDb, utc_text
from iotruntime.stopping import sleep_unless_stopped

_ = services.gettext

log = logging.getLogger(__name__)
DUTY_DESK = "duty"
NO_UNIT = "no unit covers the pole"
NOT_ACKNOWLEDGED = "no unit acknowledged in time"


class DispatchError(ValueError):
    """A dispatch request that cannot be carried out; the message says why."""


def unit_channel(unit: str) -> str:
    """The delivery channel of a unit's MQTT topic."""
    return f"dispatch:{unit}"


@dataclass(frozen=True)
class Unit:
    name: str
    area: Area | None
    poles: frozenset[str]
    channels: tuple[str, ...]

    def covers(self, device: str, pole: RegisteredDevice | None) -> bool:
        if device in self.poles:
            return True
        where = pole.location if pole is not None else None
        return self.area is not None and where is not None and self.area.holds(where.lat, where.lon)


def units_of(settings: Sequence[UnitSettings]) -> list[Unit]:
    return [
        Unit(
            u.name,
            area(u.area) if u.area else None,
            frozenset(u.poles),
            (unit_channel(u.name),)
            + ((deliveries.webhook_channel(u.webhook.name),) if u.webhook else ()),
        )
        for u in settings
    ]


def _escalate(db: sqlite3.Connection, alert_id: str, reason: str, now: datetime) -> None:
    db.execute("INSERT INTO escalations VALUES (?, ?, ?)", (alert_id, now.isoformat(), reason))
    deliveries.schedule(db, alert_id, (DUTY_DESK,), now)
    audit.record(db, "collector", "alert.escalate", alert_id, {"reason": reason}, now)


def dispatch(
    db: sqlite3.Connection,
    units: Sequence[Unit],
    alert_id: str,
    device: str,
    pole: RegisteredDevice | None,
    now: datetime,
) -> list[str]:
    """Inside the raising transaction: the alert to every unit covering the pole, or to
    the duty desk at once if none does. The units it went to."""
    if not units:
        return []
    chosen = [u for u in units if u.covers(device, pole)]
    if not chosen:
        _escalate(db, alert_id, NO_UNIT, now)
        return []
    for unit in chosen:
        db.execute(
            "INSERT INTO dispatches (alert, unit, created) VALUES (?, ?, ?)",
            (alert_id, unit.name, utc_text(now)),
        )
        deliveries.schedule(db, alert_id, unit.channels, now)
    names = [u.name for u in chosen]
    audit.record(db, "collector", "alert.dispatch", alert_id, {"units": names}, now)
    return names


@dataclass(frozen=True)
class DispatchRecord:
    alert: str
    unit: str
    created: datetime
    acked_at: datetime | None
    acked_by: str | None
    ack_note: str | None


@dataclass(frozen=True)
class AlertDispatch:
    """Where an alert went and what became of it, as the police panel shows it."""

    alert: str
    units: list[DispatchRecord]
    escalated_at: datetime | None
    escalation: str | None

    @property
    def acknowledged(self) -> bool:
        return any(u.acked_at is not None for u in self.units)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Dispatches:
    def __init__(self, db: PoliceDb) -> None:
        self._db = db

    def of(self, alert_id: str) -> AlertDispatch:
        rows = self._db.rows(
            "SELECT alert, unit, created, acked_at, acked_by, ack_note FROM dispatches"
            " WHERE alert = ? ORDER BY unit",
            (alert_id,),
        )
        escalated = self._db.rows("SELECT at, reason FROM escalations WHERE alert = ?", (alert_id,))
        at, reason = escalated[0] if escalated else (None, None)
        return AlertDispatch(
            alert_id,
            [
                DispatchRecord(a, u, datetime.fromisoformat(c), _when(t), by, note)
                for a, u, c, t, by, note in rows
            ],
            _when(at),
            reason,
        )

    def acknowledge(
        self, alert_id: str, unit: str, by: str, note: str = "", now: datetime | None = None
    ) -> AlertDispatch:
        """The unit has the alert in hand; a second acknowledgement is refused, so the
        record says who took it first."""
        now = now or datetime.now(UTC)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT acked_by FROM dispatches WHERE alert = ? AND unit = ?", (alert_id, unit)
            ).fetchone()
            if row is None:
                raise DispatchError(
                    _("alert {id} was not dispatched to unit {unit}").format(
                        id=alert_id, unit=repr(unit)
                    )
                )
            if row[0] is not None:
                raise DispatchError(
                    _("unit {unit} acknowledged alert {id} already ({by})").format(
                        unit=unit, id=alert_id, by=row[0]
                    )
                )
            db.execute(
                "UPDATE dispatches SET acked_at = ?, acked_by = ?, ack_note = ?"
                " WHERE alert = ? AND unit = ?",
                (now.isoformat(), by, note, alert_id, unit),
            )
            audit.record(
                db, by, "dispatch.acknowledge", alert_id, {"unit": unit, "note": note}, now
            )
        return self.of(alert_id)

    def escalate_due(self, after_s: float, now: datetime | None = None) -> list[str]:
        """Escalate every alert whose units have all let `after_s` pass without an
        acknowledgement; the alerts escalated."""
        now = now or datetime.now(UTC)
        before = utc_text(now - timedelta(seconds=after_s))
        with self._db.transaction() as db:
            due = [
                alert
                for (alert,) in db.execute(
                    "SELECT d.alert FROM dispatches d GROUP BY d.alert"
                    " HAVING max(d.acked_at) IS NULL AND max(d.created) <= ?"
                    " AND d.alert NOT IN (SELECT alert FROM escalations)",
                    (before,),
                )
            ]
            for alert in due:
                _escalate(db, alert, NOT_ACKNOWLEDGED, now)
        return due


async def escalate_periodically(
    found: Dispatches, after_s: float, wakeup: deliveries.Wakeup, stop: asyncio.Event
) -> None:
    """Look for alerts to escalate a few times per `after_s` until `stop`; a failed look
    is logged and tried again at the next."""
    every_s = max(0.5, min(5.0, after_s / 4))
    while not stop.is_set():
        try:
            escalated = await asyncio.to_thread(found.escalate_due, after_s)
        except sqlite3.Error as exc:
            log.warning("escalation check failed, trying again: %s", exc)
            escalated = []
        if escalated:
            log.warning(
                "%d alert(s) escalated to the duty desk: %s", len(escalated), NOT_ACKNOWLEDGED
            )
            wakeup.notify()
        await sleep_unless_stopped(stop, every_s)
