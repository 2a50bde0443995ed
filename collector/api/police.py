"""The police endpoints: the watchlist, alerts (listed, streamed, acknowledged, sent
again), and the audit trail. Police role only: plates are personal data.

Every change is made as the calling user, so the audit log names the officer. The alert
stream is server-sent events: each event's id is the alert's number, and a client that
reconnects with `Last-Event-ID` gets what it missed, in order, before the live ones; a
police unit's console asks `?unit=NAME` for only the alerts dispatched to it. It
reads the police database, so it shows alerts raised by any collector sharing it; within
this process it is woken the moment one is raised, otherwise it looks every
`STREAM_POLL_S`.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import AwareDatetime

from collector.api.auth import Officer
from collector.api.context import Context, PoliceDep
from collector.api.guard import Recheck
from collector.api.models import (
    AckRequest,
    AlertOut,
    AuditOut,
    DeadDeliveryOut,
    ImportResult,
    RejectedLine,
    RetryResult,
    WatchEntryOut,
    WatchRequest,
    WatchResult,
)
from collector.api.texts import NO_ALERT, Refusal
from collector.police import audit
from collector.police.records import AlertError
from collector.police.service import Police
from collector.police.watchlist import NotWatchedError, WatchlistError
from iotruntime.i18n import N_

STREAM_POLL_S = 0.5
T = TypeVar("T")
router = APIRouter(tags=["police"])


def _run(call: Callable[[], T]) -> T:
    try:
        return call()
    except NotWatchedError as exc:
        raise HTTPException(404, str(exc)) from None
    except (WatchlistError, AlertError) as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/watchlist", summary="Every watchlist entry, with whether it still matches")
def watchlist(_: Officer, police: PoliceDep) -> list[WatchEntryOut]:
    now = datetime.now(UTC)
    return [WatchEntryOut.of(e, now) for e in police.watchlist.entries()]


@router.post("/watchlist", summary="Add a plate, or update its entry", status_code=200)
def watch(officer: Officer, police: PoliceDep, request: WatchRequest) -> WatchResult:
    entry, new = _run(
        lambda: police.watchlist.add(
            request.plate, request.reason, officer.name, request.priority, request.expires
        )
    )
    return WatchResult(created=new, entry=WatchEntryOut.of(entry, datetime.now(UTC)))


@router.delete("/watchlist/{plate}", summary="Take a plate off the watchlist")
def unwatch(officer: Officer, police: PoliceDep, plate: str) -> WatchEntryOut:
    entry = _run(lambda: police.watchlist.remove(plate, officer.name))
    return WatchEntryOut.of(entry, datetime.now(UTC))


@router.post(
    "/watchlist/import",
    summary="Add or update many plates from CSV: plate,reason[,priority][,expires]",
)
def import_csv(
    officer: Officer,
    police: PoliceDep,
    body: Annotated[str, Body(media_type="text/csv")],
) -> ImportResult:
    result = _run(lambda: police.watchlist.import_csv(io.StringIO(body), officer.name))
    return ImportResult(
        added=result.added,
        updated=result.updated,
        rejected=[RejectedLine(line=line, error=error) for line, error in result.errors],
    )


@router.get("/alerts", summary="Alerts, newest first", response_model_exclude_unset=True)
def alerts(
    _: Officer,
    police: PoliceDep,
    since: AwareDatetime | None = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AlertOut]:
    return [AlertOut.of(r) for r in police.alerts.recent(since, open_only, limit)]


@router.get(
    "/alerts/stream",
    summary="Alerts as server-sent events, as they are raised",
    response_class=EventSourceResponse,
)
async def stream(
    officer: Officer,
    ctx: Context,
    police: PoliceDep,
    request: Request,
    last_event_id: Annotated[str | None, Header(description="resume after this id")] = None,
    unit: Annotated[
        str | None, Query(description="only the alerts dispatched to this police unit")
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    if last_event_id is not None and not last_event_id.isdigit():
        raise Refusal(
            422, N_("Last-Event-ID {value} is not an alert number"), value=repr(last_event_id)
        )
    n = (
        int(last_event_id)
        if last_event_id is not None
        else await asyncio.to_thread(police.alerts.last_number)
    )
    raised = police.wakeup.subscribe()
    stop = ctx.stop
    stopping = asyncio.create_task(stop.wait())
    recheck = Recheck(request, ctx.users)
    try:
        while not stop.is_set() and not await recheck.lapsed():
            raised.clear()
            for record in await asyncio.to_thread(police.alerts.after, n):
                n = record.n
                if unit is not None and not await asyncio.to_thread(
                    _dispatched_to, police, record.alert.id, unit
                ):
                    continue
                yield ServerSentEvent(data=record.alert, event="plate_alert", id=str(record.n))
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


def _dispatched_to(police: Police, alert_id: str, unit: str) -> bool:
    found = police.dispatches.of(alert_id) if police.dispatches is not None else None
    return found is not None and any(u.unit == unit for u in found.units)


@router.get("/alerts/dead", summary="Deliveries that used up their attempts")
def dead(_: Officer, police: PoliceDep) -> list[DeadDeliveryOut]:
    return [DeadDeliveryOut.of(d) for d in police.deliveries.dead()]


@router.get(
    "/alerts/{alert_id}",
    summary="One alert, with where it was delivered",
    response_model_exclude_unset=True,
)
def alert(_: Officer, police: PoliceDep, alert_id: str) -> AlertOut:
    record = police.alerts.get(alert_id)
    if record is None:
        raise Refusal(404, NO_ALERT, alert=repr(alert_id))
    return AlertOut.of(record, police.deliveries.of(alert_id))


@router.post(
    "/alerts/{alert_id}/ack",
    summary="Acknowledge an alert: it is in hand",
    response_model_exclude_unset=True,
)
def acknowledge(
    officer: Officer, police: PoliceDep, alert_id: str, request: AckRequest | None = None
) -> AlertOut:
    if police.alerts.get(alert_id) is None:
        raise Refusal(404, NO_ALERT, alert=repr(alert_id))
    note = request.note if request else ""
    try:
        record = police.alerts.acknowledge(alert_id, officer.name, note)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None
    return AlertOut.of(record)


@router.post("/alerts/{alert_id}/retry", summary="Send an alert's dead deliveries again")
async def retry(officer: Officer, police: PoliceDep, alert_id: str) -> RetryResult:
    requeued = await asyncio.to_thread(police.deliveries.retry, alert_id, officer.name)
    if not requeued:
        raise Refusal(404, N_("alert {alert} has no dead delivery"), alert=repr(alert_id))
    police.wakeup.notify()
    return RetryResult(requeued=requeued)


@router.get("/audit", summary="The audit trail, oldest first", response_model=list[AuditOut])
def audit_trail(
    _: Officer,
    police: PoliceDep,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    action: str | None = None,
    subject: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> list[AuditOut] | Response:
    found = audit.records(police.db, since, until, action, subject)
    if format == "csv":
        out = io.StringIO()
        audit.write_csv(found, out)
        return Response(out.getvalue(), media_type="text/csv")
    return [AuditOut.of(r) for r in found]
