"""The dispatch endpoints: where an alert went among the police units, each unit's
acknowledgement, and the escalation to the duty desk (collector/police/dispatch.py).
Police role only."""

from datetime import datetime
from typing import Self

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from collector.api.auth import Officer
from collector.api.context import PoliceDep
from collector.api.texts import NO_ALERT, Refusal
from collector.police.dispatch import AlertDispatch, DispatchError, Dispatches
from iotruntime.i18n import N_

router = APIRouter(tags=["police"])


class UnitDispatchOut(BaseModel):
    unit: str
    sent: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None


class DispatchOut(BaseModel):
    alert: str
    acknowledged: bool
    units: list[UnitDispatchOut]
    escalated_at: datetime | None
    escalation: str | None

    @classmethod
    def of(cls, found: AlertDispatch) -> Self:
        return cls(
            alert=found.alert,
            acknowledged=found.acknowledged,
            units=[
                UnitDispatchOut(
                    unit=u.unit,
                    sent=u.created,
                    acknowledged_at=u.acked_at,
                    acknowledged_by=u.acked_by,
                    note=u.ack_note,
                )
                for u in found.units
            ],
            escalated_at=found.escalated_at,
            escalation=found.escalation,
        )


class UnitAckRequest(BaseModel):
    unit: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=1000)


def _dispatches(police: PoliceDep) -> Dispatches:
    if police.dispatches is None:
        raise Refusal(404, N_("the collector runs without police units"))
    return police.dispatches


@router.get("/alerts/{alert_id}/dispatch", summary="The units an alert went to, and their answers")
def dispatch_of(_: Officer, police: PoliceDep, alert_id: str) -> DispatchOut:
    if police.alerts.get(alert_id) is None:
        raise Refusal(404, NO_ALERT, alert=repr(alert_id))
    return DispatchOut.of(_dispatches(police).of(alert_id))


@router.post("/alerts/{alert_id}/dispatch/ack", summary="A unit acknowledges its dispatch")
def acknowledge_dispatch(
    officer: Officer, police: PoliceDep, alert_id: str, request: UnitAckRequest
) -> DispatchOut:
    if police.alerts.get(alert_id) is None:
        raise Refusal(404, NO_ALERT, alert=repr(alert_id))
    try:
        found = _dispatches(police).acknowledge(alert_id, request.unit, officer.name, request.note)
    except DispatchError as exc:
        raise HTTPException(409, str(exc)) from None
    return DispatchOut.of(found)
