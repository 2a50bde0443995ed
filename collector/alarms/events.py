"""What an alarm says, on MQTT and in a webhook's body, and what a rule found.

A `Finding` is a rule's verdict on one subject (a box, or one series of one box): over
(`Breach`), back to normal (`CLEAR`), or in between (`HOLD`, inside the hysteresis band or
not judged this tick). The book turns findings into alarms; an `AlarmEvent` is one change
of an alarm as it is delivered.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from collector.config import AlarmSeverity


class Event(StrEnum):
    RAISED = "raised"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"


class Verdict(StrEnum):
    CLEAR = "clear"
    HOLD = "hold"


CLEAR = Verdict.CLEAR
HOLD = Verdict.HOLD


@dataclass(frozen=True)
class Breach:
    """A rule's condition holds for `subject`; what the alarm will say about it."""

    message: str
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    regulation: str | None = None
    clause: str | None = None
    averaging: str | None = None


Finding = Breach | Verdict


@dataclass(frozen=True)
class Subject:
    """What a rule judges: a device, or one series of a device (`device/sensor/param`)."""

    rule: str
    device: str
    name: str


class AlarmEvent(BaseModel):
    """One change of an alarm, as consoles and webhooks receive it; `id` is the alarm's,
    the same in its raised and resolved events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["alarm"] = "alarm"
    event: Event
    id: str
    rule: str
    rule_type: str
    severity: AlarmSeverity
    roles: tuple[str, ...]
    device: str
    subject: str
    message: str
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    regulation: str | None = None
    clause: str | None = None
    averaging: str | None = None
    raised_at: datetime
    resolved_at: datetime | None = None
    ts: datetime
