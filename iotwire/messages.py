"""Message models for every payload on the wire.

Every message carries the schema version, its kind, the device id and a per-device
sequence number. Sequence numbers count the device's outbox stream (telemetry, plate,
health): the collector uses them to count duplicates and gaps, which is how the system
proves it lost nothing. Status and acknowledgement messages repeat the latest sequence
number for context; they are not part of that stream.

A box's state (its outbox) is born with a random `epoch`; its sequence numbers count
from 1 within it. A box that loses its state (a new SD card, a reinstall) starts a new
epoch, so the collector sees a state reset instead of taking the new numbers for repeats.
Payloads without an epoch come from agents older than it, and count under the empty one.

Times are timezone-aware and come from the device, with its clock-sync state, so the
collector never has to guess when a sample was taken.
"""

from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from iotwire.topics import IDENT_PATTERN, Channel

SCHEMA_VERSION: Final = 1
MAX_SEQ = 2**63 - 1

# Control characters: C0, DEL and C1. A string that names something (an id, a version, a
# unit) becomes a log line, a tag or a field in a store, a label in /metrics: a newline in
# it writes a line of its own in InfluxDB's line protocol, a log or a station file.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_PRINTABLE = f"^[^{_CONTROL}]*$"

DeviceId = Annotated[str, StringConstraints(pattern=f"^{IDENT_PATTERN}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
# Free text for what instruments print ("µg/m³", "°C", "mg/L as N"), but no backslash: the
# line protocol cannot carry one at the end of a tag value or before a comma, space or
# equals sign, and InfluxDB 1.x/2.x and 3.x read an escaped one differently.
Unit = Annotated[str, StringConstraints(max_length=24, pattern=f"^[^{_CONTROL}\\\\]*$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
PlateDisplay = Annotated[str, StringConstraints(min_length=5, max_length=20, pattern=_PRINTABLE)]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
Epoch = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
MAX_COMMITTED_RANGES = 1024
Count = Annotated[int, Field(ge=0, le=MAX_SEQ)]
Percent = Annotated[float, Field(ge=0, le=100)]
Timestamp = AwareDatetime


class Quality(StrEnum):
    """Per-value status, mapped one to one onto the station data-file status codes."""

    OK = "ok"
    CALIBRATING = "calibrating"
    FAULT = "fault"
    OUT_OF_RANGE = "out_of_range"


class ClockSync(StrEnum):
    SYNCED = "synced"
    UNSYNCED = "unsynced"


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _Envelope(WireModel):
    """In code the class implies `v` and `kind`; on the wire the codec requires both."""

    v: Literal[1] = SCHEMA_VERSION
    device: DeviceId
    seq: Seq


class _Streamed(_Envelope):
    """A message of the outbox stream. `backlog` is never encoded with the message: the
    agent adds it to the committed payload when the message leaves the outbox late
    (iotwire/backlog.py)."""

    backlog: bool = Field(default=False, exclude=True)
    epoch: Epoch | None = None


class Reading(WireModel):
    """One parameter's value; a failed read is a `fault` reading with no value, so the
    collector sees the tick and why it is empty rather than silence."""

    parameter: Name
    value: float | None
    unit: Unit
    quality: Quality = Quality.OK

    @model_validator(mode="after")
    def _value_unless_fault(self) -> Self:
        if self.value is None and self.quality is not Quality.FAULT:
            raise ValueError("only a fault reading may have no value")
        return self


class Sample(WireModel):
    sensor: Name
    ts: Timestamp
    readings: Annotated[tuple[Reading, ...], Field(min_length=1, max_length=256)]


class Telemetry(_Streamed):
    kind: Literal["telemetry"] = "telemetry"
    clock: ClockSync
    samples: Annotated[tuple[Sample, ...], Field(min_length=1, max_length=1000)]


class PlateRead(_Streamed):
    kind: Literal["plate"] = "plate"
    camera: Name
    ts: Timestamp
    clock: ClockSync
    text: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{5,12}$")]
    display: PlateDisplay
    confidence: Annotated[float, Field(ge=0, le=1)]
    box: tuple[
        Annotated[int, Field(ge=0)],
        Annotated[int, Field(ge=0)],
        Annotated[int, Field(ge=1)],
        Annotated[int, Field(ge=1)],
    ]
    colour: Literal["white", "yellow", "blue", "red"] | None = None
    crop_jpeg_b64: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=131072)]
        | None
    ) = None


class Health(_Streamed):
    kind: Literal["health"] = "health"
    ts: Timestamp
    clock: ClockSync
    boot_id: ShortText
    uptime_s: Annotated[float, Field(ge=0)]
    load1: Annotated[float, Field(ge=0)]
    mem_used_pct: Percent
    disk_used_pct: Percent
    cpu_temp_c: Annotated[float, Field(ge=-60, le=150)] | None = None
    outbox_depth: Count
    outbox_dropped: Count
    source_errors: Annotated[dict[Name, Count], Field(max_length=256)]
    bus_errors: Annotated[dict[Name, Count], Field(max_length=64)] = Field(
        default_factory=dict, description="per bus: timeouts, exceptions and link errors"
    )


class Status(_Envelope):
    """Birth (online) and the retained last will (offline)."""

    kind: Literal["status"] = "status"
    state: Literal["online", "offline"]
    ts: Timestamp
    version: ShortText
    boot_id: ShortText
    epoch: Epoch | None = None


CommandName = Literal[
    "reload_config",
    "read_sensor",
    "report_status",
    "push_config",
    "report_config",
    "update_software",
]
"""`push_config` and `report_config` came with remote configuration
(iotwire/config_push.py), `update_software` with software updates
(iotwire/software_update.py); an agent older than them drops them undecoded and never
answers, which the collector reports as no answer."""
MAX_CONFIG_CHARS = 64 * 1024
"""An agent config on the wire: a pushed one, or the one a box reports it runs. A box's
config is a few kilobytes; the bound keeps a push, its signature and envelope far inside
MAX_PAYLOAD_BYTES."""


class Command(_Envelope):
    """Collector to agent; `seq` counts the collector's commands to that device."""

    kind: Literal["cmd"] = "cmd"
    id: ShortText
    name: CommandName
    args: Annotated[dict[Name, str | int | float | bool], Field(max_length=32)]
    ts: Timestamp


class CommandAck(_Envelope):
    kind: Literal["cmd_ack"] = "cmd_ack"
    id: ShortText
    ok: bool
    ts: Timestamp
    detail: Annotated[str, StringConstraints(max_length=4096)] = ""
    config: Annotated[str, StringConstraints(max_length=MAX_CONFIG_CHARS)] | None = Field(
        default=None,
        description="report_config: the config file the agent runs, as it read it at start",
    )


SeqRange = tuple[Seq, Seq]

MAX_BATCH_MESSAGES = 1000


class Batch(WireModel):
    """Box to collector, on its `batch` topic: consecutive telemetry and health messages
    of its stream in one publish, as a backlog drains. Each keeps its own sequence
    number, epoch and backlog mark and is stored, counted and confirmed as if it had come
    alone; one publish instead of hundreds is what lets a day's backlog drain at the
    speed of the store rather than of MQTT round trips. Plate reads always go alone: the
    police intake takes them off their own topic. The agent writes the payload from the
    committed bytes (iotwire/batches.py), never by encoding this model."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["batch"] = "batch"
    device: DeviceId
    messages: Annotated[
        tuple[Annotated[Telemetry | Health, Field(discriminator="kind")], ...],
        Field(min_length=1, max_length=MAX_BATCH_MESSAGES),
    ]


class Committed(WireModel):
    """Collector to agent, on the device's `committed` topic: these sequence numbers of
    this epoch are in the store (or the collector's spool), so the box may forget them.
    Until it hears this, a box keeps a message and sends it again; the ledger takes the
    repeat as a duplicate. Ranges are inclusive, `(first, last)`."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["committed"] = "committed"
    device: DeviceId
    epoch: Epoch
    ranges: Annotated[tuple[SeqRange, ...], Field(min_length=1, max_length=MAX_COMMITTED_RANGES)]

    @model_validator(mode="after")
    def _ranges_in_order(self) -> Self:
        if any(first > last for first, last in self.ranges):
            raise ValueError("a range's first sequence number is after its last")
        return self


class Pole(WireModel):
    """Where a camera stands, from the collector's device registry."""

    name: ShortText
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None


class PlateAlert(WireModel):
    """Collector to police consoles: a plate read matched the watchlist. `backlog` says
    the read waited out an outage on the pole, so the vehicle passed a while ago. `pole`
    is absent for a device the registry does not know."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["plate_alert"] = "plate_alert"
    id: ShortText
    plate: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{5,12}$")]
    display: PlateDisplay
    match: Literal["exact", "confusion", "one_character"]
    score: Annotated[float, Field(ge=0, le=1)]
    watched: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{5,12}$")]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    priority: Literal["high", "normal", "low"]
    site: DeviceId
    device: DeviceId
    camera: Name
    pole: Pole | None = None
    ts: Timestamp
    confidence: Annotated[float, Field(ge=0, le=1)]
    backlog: bool = False
    crop_jpeg_b64: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=131072)]
        | None
    ) = None


Message = Telemetry | PlateRead | Health | Status | Command | CommandAck | Committed | Batch

MODEL_FOR_CHANNEL: dict[Channel, type[Message]] = {
    Channel.TELEMETRY: Telemetry,
    Channel.PLATE: PlateRead,
    Channel.HEALTH: Health,
    Channel.STATUS: Status,
    Channel.CMD: Command,
    Channel.CMD_ACK: CommandAck,
    Channel.COMMITTED: Committed,
    Channel.BATCH: Batch,
}
