"""Request and response models of the police endpoints: what the OpenAPI document shows a
console's developer, and what the answers are checked against."""

from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, Field

from collector.police.audit import AuditRecord
from collector.police.deliveries import AlertDelivery
from collector.police.records import AlertRecord
from collector.police.watchlist import Priority, WatchEntry
from collector.rows import IsoTime, row_of
from iotwire.messages import PlateAlert


class WatchRequest(BaseModel):
    plate: str = Field(description="as written: 68-B1 234.56, 68A-123.45, ...")
    reason: str
    priority: Priority = Priority.NORMAL
    expires: AwareDatetime | None = None


class AckRequest(BaseModel):
    note: str = Field(default="", max_length=1024)


class WatchEntryOut(BaseModel):
    plate: str
    display: str
    reason: str
    priority: Priority
    expires: IsoTime | None
    active: bool
    added_by: str
    added_at: IsoTime

    @classmethod
    def of(cls, e: WatchEntry, now: datetime) -> Self:
        return row_of(cls, e, active=e.active(now))


class WatchResult(BaseModel):
    created: bool
    entry: WatchEntryOut


class RejectedLine(BaseModel):
    line: int
    error: str


class ImportResult(BaseModel):
    added: int
    updated: int
    rejected: list[RejectedLine]


class DeliveryOut(BaseModel):
    channel: str
    state: str
    attempts: int
    last_error: str | None
    updated: IsoTime

    @classmethod
    def of(cls, d: AlertDelivery) -> Self:
        return row_of(cls, d, state=d.state.value)


class DeadDeliveryOut(DeliveryOut):
    alert: PlateAlert


class Acknowledgement(BaseModel):
    at: IsoTime
    by: str | None
    note: str | None


class AlertOut(BaseModel):
    """An alert with its acknowledgement; `deliveries` only where one alert is asked for."""

    n: int
    alert: PlateAlert
    created: IsoTime
    acknowledged: Acknowledgement | None
    deliveries: list[DeliveryOut] | None = None

    @classmethod
    def of(cls, r: AlertRecord, deliveries: list[AlertDelivery] | None = None) -> Self:
        acknowledged = (
            Acknowledgement(at=r.acked_at, by=r.acked_by, note=r.ack_note) if r.acked_at else None
        )
        found = cls(n=r.n, alert=r.alert, created=r.created, acknowledged=acknowledged)
        if deliveries is not None:
            found.deliveries = [DeliveryOut.of(d) for d in deliveries]
        return found


class RetryResult(BaseModel):
    requeued: int


class AuditOut(BaseModel):
    id: int
    at: IsoTime
    actor: str
    action: str
    subject: str
    detail: dict[str, object]

    @classmethod
    def of(cls, r: AuditRecord) -> Self:
        return row_of(cls, r)
