"""Alarms for operations staff and the environmental officer: the list, a stream of
changes, acknowledging one, silencing a rule or a box for a maintenance window. Each
change is recorded in the alarm book's history under the caller's user name
(collector/alarms/book.py).

The stream is server-sent events, one per change of an alarm whose rule tells the
caller's role; each event's id is the change's number in the history, so a client that
reconnects with `Last-Event-ID` gets what it missed, in order, before the live ones.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Self

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.alarms.book import Alarm, AlarmBook, Silence, UnknownAlarmError
from collector.api.auth import role_in
from collector.api.context import Context
from collector.api.guard import Recheck
from collector.api.texts import Refusal
from collector.api.users import Role, User
from collector.rows import row_of
from iotruntime.i18n import N_

router = APIRouter(tags=["alarms"])
AlarmUser = Annotated[User, Depends(role_in(frozenset({Role.OPS, Role.ENV})))]
MAX_SILENCE = timedelta(days=30)
STREAM_POLL_S = 1.0


def book_of(request: Request) -> AlarmBook:
    """The alarm book `collector run` opened; the router is included only with it."""
    book: AlarmBook | None = getattr(request.app.state, "alarms", None)
    if book is None:
        raise Refusal(404, N_("the collector runs without an alarms section"))
    return book


Book = Annotated[AlarmBook, Depends(book_of)]


class AlarmOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    rule: str
    rule_type: str
    severity: str
    roles: tuple[str, ...]
    device: str
    subject: str
    message: str
    value: float | None
    limit: float | None
    unit: str | None
    regulation: str | None
    clause: str | None
    averaging: str | None
    state: str
    raised_at: datetime
    resolved_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None

    @classmethod
    def of(cls, alarm: Alarm) -> Self:
        return row_of(cls, alarm)


class SilenceIn(BaseModel):
    """A rule, a device or both, silenced for `for_s` seconds (at most 30 days)."""

    model_config = ConfigDict(extra="forbid")

    rule: str | None = None
    device: str | None = None
    for_s: Annotated[float, Field(gt=0, le=MAX_SILENCE.total_seconds())]
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if self.rule is None and self.device is None:
            raise ValueError("name a rule, a device or both")
        return self


class SilenceOut(BaseModel):
    id: int
    rule: str | None
    device: str | None
    until: datetime
    by: str
    reason: str

    @classmethod
    def of(cls, silence: Silence) -> Self:
        return cls(
            id=silence.id,
            rule=silence.rule,
            device=silence.device,
            until=silence.until,
            by=silence.actor,
            reason=silence.reason,
        )


@router.get("/alarms", summary="Alarms, newest first", response_model=list[AlarmOut])
def alarms(
    _: AlarmUser,
    book: Book,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[AlarmOut]:
    return [AlarmOut.of(a) for a in book.alarms(active_only=active, limit=limit)]


@router.post("/alarms/{alarm_id}/ack", summary="Acknowledge an alarm", response_model=AlarmOut)
def acknowledge(alarm_id: str, user: AlarmUser, book: Book) -> AlarmOut:
    try:
        return AlarmOut.of(book.acknowledge(alarm_id, user.name, datetime.now(UTC)))
    except UnknownAlarmError as exc:
        raise HTTPException(404, str(exc)) from None


@router.post(
    "/alarms/silence", summary="Silence a rule or a box for a while", response_model=SilenceOut
)
def silence(body: SilenceIn, user: AlarmUser, book: Book, ctx: Context) -> SilenceOut:
    alarms = ctx.settings.alarms
    rules = {r.name for r in alarms.rules} if alarms is not None else set()
    if body.rule is not None and body.rule not in rules:
        raise Refusal(422, N_("no alarm rule {rule} in the config"), rule=repr(body.rule))
    now = datetime.now(UTC)
    until = now + timedelta(seconds=body.for_s)
    return SilenceOut.of(book.silence(body.rule, body.device, until, user.name, body.reason, now))


@router.get("/alarms/silences", summary="Silences in force", response_model=list[SilenceOut])
def silences(_: AlarmUser, book: Book) -> list[SilenceOut]:
    return [SilenceOut.of(s) for s in book.silences(datetime.now(UTC))]


@router.get(
    "/alarms/stream",
    summary="Changes of the alarms told to the caller's role, as server-sent events",
    response_class=EventSourceResponse,
)
async def stream(
    user: AlarmUser,
    book: Book,
    ctx: Context,
    request: Request,
    last_event_id: Annotated[str | None, Header(description="resume after this id")] = None,
) -> AsyncIterator[ServerSentEvent]:
    if last_event_id is not None and not last_event_id.isdigit():
        raise Refusal(
            422, N_("Last-Event-ID {value} is not a change number"), value=repr(last_event_id)
        )
    n = int(last_event_id) if last_event_id else await asyncio.to_thread(book.last_change)
    stopping = asyncio.create_task(ctx.stop.wait())
    recheck = Recheck(request, ctx.users)
    try:
        while not ctx.stop.is_set() and not await recheck.lapsed():
            for change in await asyncio.to_thread(book.history_after, n):
                n = change.n
                if change.alarm is None:
                    continue
                alarm = await asyncio.to_thread(book.get, change.alarm)
                if user.role.value in alarm.roles:
                    yield ServerSentEvent(
                        data=AlarmOut.of(alarm), event=f"alarm_{change.event}", id=str(n)
                    )
            await asyncio.wait({stopping}, timeout=STREAM_POLL_S)
    finally:
        stopping.cancel()
