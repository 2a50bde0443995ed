"""The police endpoints: the watchlist, alerts (listed, streamed, acknowledged, sent
again), and the audit trail. Police role only: plates are personal data.

Every change is made as the calling user, so the audit log names the officer. The alert
stream is server-sent events: each event's id is the alert's number, and a client that
reconnects with `Last-Event-ID` gets what it missed, in order, before the live ones. It
reads the police database, so it shows alerts raised by any collector sharing it; within
this process it is woken the moment one is raised, otherwise it looks every
`STREAM_POLL_S`.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import AwareDatetime, BaseModel, Field

from collector.alerts import audit
from collector.alerts.deliveries import Delivery
from collector.alerts.plates import AlertError, AlertRecord
from collector.alerts.service import Police
from collector.alerts.watchlist import NotWatchedError, Priority, WatchEntry, WatchlistError
from collector.api_auth import role_in
from collector.users import Role, User, Users

POLICE = frozenset({Role.POLICE})
STREAM_POLL_S = 0.5
T = TypeVar("T")


class WatchRequest(BaseModel):
    plate: str = Field(description="as written: 68-B1 234.56, 68A-123.45, ...")
    reason: str
    priority: Priority = Priority.NORMAL
    expires: AwareDatetime | None = None


class AckRequest(BaseModel):
    note: str = Field(default="", max_length=1024)


def _entry(e: WatchEntry) -> dict[str, object]:
    return {
        "plate": e.plate,
        "display": e.display,
        "reason": e.reason,
        "priority": e.priority.value,
        "expires": e.expires.isoformat() if e.expires else None,
        "active": e.active(datetime.now(UTC)),
        "added_by": e.added_by,
        "added_at": e.added_at.isoformat(),
    }


def _delivery(d: Delivery) -> dict[str, object]:
    return {
        "channel": d.channel,
        "state": d.state.value,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "updated": d.updated.isoformat(),
    }


def _alert(r: AlertRecord, deliveries: list[Delivery] | None = None) -> dict[str, object]:
    found: dict[str, object] = {
        "n": r.n,
        "alert": r.alert.model_dump(mode="json"),
        "created": r.created.isoformat(),
        "acknowledged": (
            {"at": r.acked_at.isoformat(), "by": r.acked_by, "note": r.ack_note}
            if r.acked_at
            else None
        ),
    }
    if deliveries is not None:
        found["deliveries"] = [_delivery(d) for d in deliveries]
    return found


def police_router(police: Police, users: Users, stop: asyncio.Event) -> APIRouter:
    router = APIRouter(tags=["police"])
    Officer = Annotated[User, Depends(role_in(users, POLICE))]

    def _run(call: Callable[[], T]) -> T:
        try:
            return call()
        except NotWatchedError as exc:
            raise HTTPException(404, str(exc)) from None
        except (WatchlistError, AlertError) as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/watchlist", summary="Every watchlist entry, with whether it still matches")
    def watchlist(_: Officer) -> list[dict[str, object]]:
        return [_entry(e) for e in police.watchlist.entries()]

    @router.post("/watchlist", summary="Add a plate, or update its entry", status_code=200)
    def watch(officer: Officer, request: WatchRequest) -> dict[str, object]:
        entry, new = _run(
            lambda: police.watchlist.add(
                request.plate, request.reason, officer.name, request.priority, request.expires
            )
        )
        return {"created": new, "entry": _entry(entry)}

    @router.delete("/watchlist/{plate}", summary="Take a plate off the watchlist")
    def unwatch(officer: Officer, plate: str) -> dict[str, object]:
        return _entry(_run(lambda: police.watchlist.remove(plate, officer.name)))

    @router.post(
        "/watchlist/import",
        summary="Add or update many plates from CSV: plate,reason[,priority][,expires]",
    )
    def import_csv(
        officer: Officer,
        body: Annotated[str, Body(media_type="text/csv")],
    ) -> dict[str, object]:
        result = _run(lambda: police.watchlist.import_csv(io.StringIO(body), officer.name))
        return {
            "added": result.added,
            "updated": result.updated,
            "rejected": [{"line": line, "error": error} for line, error in result.errors],
        }

    @router.get("/alerts", summary="Alerts, newest first")
    def alerts(
        _: Officer,
        since: AwareDatetime | None = None,
        open_only: Annotated[bool, Query(alias="open")] = False,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, object]]:
        return [_alert(r) for r in police.alerts.recent(since, open_only, limit)]

    @router.get(
        "/alerts/stream",
        summary="Alerts as server-sent events, as they are raised",
        response_class=EventSourceResponse,
    )
    async def stream(
        officer: Officer,
        last_event_id: Annotated[str | None, Header(description="resume after this id")] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        if last_event_id is not None and not last_event_id.isdigit():
            raise HTTPException(422, f"Last-Event-ID {last_event_id!r} is not an alert number")
        n = (
            int(last_event_id)
            if last_event_id is not None
            else await asyncio.to_thread(police.alerts.last_number)
        )
        raised = police.wakeup.subscribe()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                raised.clear()
                for record in await asyncio.to_thread(police.alerts.after, n):
                    yield ServerSentEvent(data=record.alert, event="plate_alert", id=str(record.n))
                    n = record.n
                    await asyncio.to_thread(
                        police.alerts.streamed, record.alert.id, f"sse:{officer.name}"
                    )
                waking = asyncio.create_task(raised.wait())
                await asyncio.wait(
                    {waking, stopping}, timeout=STREAM_POLL_S, return_when=asyncio.FIRST_COMPLETED
                )
                waking.cancel()
        finally:
            stopping.cancel()
            police.wakeup.unsubscribe(raised)

    @router.get("/alerts/dead", summary="Deliveries that used up their attempts")
    def dead(_: Officer) -> list[dict[str, object]]:
        return [
            {"alert": d.alert.model_dump(mode="json"), **_delivery(d)}
            for d in police.deliveries.dead()
        ]

    @router.get("/alerts/{alert_id}", summary="One alert, with where it was delivered")
    def alert(_: Officer, alert_id: str) -> dict[str, object]:
        record = police.alerts.get(alert_id)
        if record is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return _alert(record, police.deliveries.of(alert_id))

    @router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert: it is in hand")
    def acknowledge(
        officer: Officer, alert_id: str, request: AckRequest | None = None
    ) -> dict[str, object]:
        if police.alerts.get(alert_id) is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        note = request.note if request else ""
        try:
            record = police.alerts.acknowledge(alert_id, officer.name, note)
        except AlertError as exc:
            raise HTTPException(409, str(exc)) from None
        return _alert(record)

    @router.post("/alerts/{alert_id}/retry", summary="Send an alert's dead deliveries again")
    async def retry(officer: Officer, alert_id: str) -> dict[str, object]:
        requeued = await asyncio.to_thread(police.deliveries.retry, alert_id, officer.name)
        if not requeued:
            raise HTTPException(404, f"alert {alert_id!r} has no dead delivery")
        police.wakeup.notify()
        return {"requeued": requeued}

    @router.get("/audit", summary="The audit trail, oldest first", response_model=None)
    def audit_trail(
        _: Officer,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        action: str | None = None,
        subject: str | None = None,
        format: Literal["json", "csv"] = "json",
    ) -> list[dict[str, object]] | Response:
        found = audit.records(police.db, since, until, action, subject)
        if format == "csv":
            out = io.StringIO()
            audit.write_csv(found, out)
            return Response(out.getvalue(), media_type="text/csv")
        return [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "subject": r.subject,
                "detail": r.detail,
            }
            for r in found
        ]

    return router
