"""Where each alert still has to go, and what became of it.

An alert gets one delivery row per channel (`mqtt`, `webhook:<name>`) in the transaction
that raises it, so a crash between raising and sending delays an alert and never loses
one. A channel's sender takes the rows that are due, and marks each delivered, or failed
with the time of its next attempt; a row that has used up its attempts is dead, which is
the dead-letter record police can list and send again. Each outcome is audited.
"""

import asyncio
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from collector.police import audit
from collector.police.database import PoliceDb, utc_text
from iotwire.messages import PlateAlert

MQTT = "mqtt"


def webhook_channel(name: str) -> str:
    return f"webhook:{name}"


class Wakeup:
    """Tells every sender in this process that alerts were raised, so none polls. Used
    from the event loop only."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        self._events.append(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._events.remove(event)

    def notify(self) -> None:
        for event in self._events:
            event.set()


class State(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class AlertDelivery:
    alert: PlateAlert
    channel: str
    state: State
    attempts: int
    next_at: datetime
    last_error: str | None
    updated: datetime


def schedule(db: sqlite3.Connection, alert_id: str, channels: Iterable[str], now: datetime) -> None:
    """Inside the raising transaction: the alert is due on every channel now."""
    db.executemany(
        "INSERT INTO alert_deliveries VALUES (?, ?, 'pending', 0, ?, NULL, ?)",
        [(alert_id, channel, utc_text(now), now.isoformat()) for channel in channels],
    )


_SELECT = (
    "SELECT a.body, d.channel, d.state, d.attempts, d.next_at, d.last_error, d.updated"
    " FROM alert_deliveries d JOIN alerts a ON a.id = d.alert"
)


def _delivery(row: tuple[str, str, str, int, str, str | None, str]) -> AlertDelivery:
    body, channel, state, attempts, next_at, error, updated = row
    return AlertDelivery(
        PlateAlert.model_validate_json(body),
        channel,
        State(state),
        attempts,
        datetime.fromisoformat(next_at),
        error,
        datetime.fromisoformat(updated),
    )


class Deliveries:
    def __init__(self, db: PoliceDb) -> None:
        self._db = db

    def claim(
        self, channel: str, now: datetime, lease_s: float, limit: int = 100
    ) -> list[AlertDelivery]:
        """Pending deliveries on `channel` whose time has come, oldest alert first, taken
        for `lease_s`: another collector sharing this database does not send them too,
        and if this one dies before it records the outcome, they fall due again when the
        lease ends."""
        until = utc_text(now + timedelta(seconds=lease_s))
        with self._db.transaction() as db:
            rows = db.execute(
                f"{_SELECT} WHERE d.channel = ? AND d.state = 'pending' AND d.next_at <= ?"
                " ORDER BY a.n LIMIT ?",
                (channel, utc_text(now), limit),
            ).fetchall()
            found = [_delivery(r) for r in rows]
            db.executemany(
                "UPDATE alert_deliveries SET next_at = ? WHERE alert = ? AND channel = ?",
                [(until, d.alert.id, channel) for d in found],
            )
        return found

    def next_attempt(self, channel: str) -> datetime | None:
        [(first,)] = self._db.rows(
            "SELECT min(next_at) FROM alert_deliveries WHERE channel = ? AND state = 'pending'",
            (channel,),
        )
        return datetime.fromisoformat(first) if first else None

    def succeeded(self, alert_id: str, channel: str, attempts: int, now: datetime) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE alert_deliveries SET state = 'delivered', attempts = ?, updated = ?"
                " WHERE alert = ? AND channel = ?",
                (attempts, now.isoformat(), alert_id, channel),
            )
            audit.record(
                db,
                "collector",
                "alert.deliver",
                alert_id,
                {"channel": channel, "attempts": attempts},
                now,
            )

    def failed(
        self,
        alert_id: str,
        channel: str,
        attempts: int,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> None:
        """Record a failed attempt; without a `retry_at` the delivery is dead."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE alert_deliveries SET state = ?, attempts = ?, next_at = ?,"
                " last_error = ?, updated = ? WHERE alert = ? AND channel = ?",
                (
                    State.PENDING.value if retry_at else State.DEAD.value,
                    attempts,
                    utc_text(retry_at or now),
                    error,
                    now.isoformat(),
                    alert_id,
                    channel,
                ),
            )
            if retry_at is None:
                audit.record(
                    db,
                    "collector",
                    "alert.dead_letter",
                    alert_id,
                    {"channel": channel, "attempts": attempts, "error": error},
                    now,
                )

    def dead(self) -> list[AlertDelivery]:
        rows = self._db.rows(f"{_SELECT} WHERE d.state = 'dead' ORDER BY d.updated")
        return [_delivery(r) for r in rows]

    def of(self, alert_id: str) -> list[AlertDelivery]:
        rows = self._db.rows(f"{_SELECT} WHERE d.alert = ? ORDER BY d.channel", (alert_id,))
        return [_delivery(r) for r in rows]

    def retry(self, alert_id: str, by: str, now: datetime | None = None) -> int:
        """Send an alert's dead deliveries again, from a fresh count of attempts; how many
        were requeued."""
        now = now or datetime.now(UTC)
        with self._db.transaction() as db:
            channels = [
                c
                for (c,) in db.execute(
                    "SELECT channel FROM alert_deliveries WHERE alert = ? AND state = 'dead'",
                    (alert_id,),
                )
            ]
            db.execute(
                "UPDATE alert_deliveries SET state = 'pending', attempts = 0, next_at = ?,"
                " updated = ? WHERE alert = ? AND state = 'dead'",
                (utc_text(now), now.isoformat(), alert_id),
            )
            for channel in channels:
                audit.record(db, by, "alert.retry", alert_id, {"channel": channel}, now)
        return len(channels)
