"""The agent's configuration: which box this is, where the broker is, what to read.

Loaded from YAML through iotruntime.configfile, so every mistake is reported with the file
and the key path. Firmware profiles named by sources are resolved here too: a source
pointing at a profile that does not exist is a config error, found before the agent starts.
"""

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from edge_agent.i18n import _
from edge_agent.profiles import (
    LineProfile,
    Profile,
    SerialSettings,
    find_profile,
    load_profile,
)
from iotruntime.configfile import ConfigError, RelativePath, StrictModel, load_model
from iotruntime.connection import BrokerSettings
from iotruntime.registration import BoxKind, BoxName, Location
from iotwire.messages import DeviceId, Name

Seconds = Annotated[float, Field(gt=0, le=86400)]
DEFAULT_RELEASES_DIR = "/opt/edge-agent"
"""The install folder scripts/install-edge.sh lays out: what provisioning writes as
`releases_dir` for a box that takes configs from the center."""


class DeviceSettings(StrictModel):
    id: DeviceId
    site: DeviceId
    kind: BoxKind
    name: BoxName
    location: Location | None = None


Baudrate = Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]


class RtuBus(StrictModel):
    """An RS-485 line on a serial port: every unit on it shares the port, one request at a time.

    Serial settings left out are taken from the profiles of the units on the bus, which
    must then agree; a value given here wins.
    """

    type: Literal["rtu"]
    name: Name
    port: Annotated[str, Field(min_length=1, description="e.g. /dev/serial/by-id/usb-FTDI...")]
    baudrate: Baudrate | None = None
    parity: Literal["N", "E", "O"] | None = None
    stopbits: Literal[1, 2] | None = None
    bytesize: Literal[7, 8] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.5


class TcpBus(StrictModel):
    """A Modbus TCP device or RS-485 gateway: one connection, reused, one request at a time."""

    type: Literal["tcp"]
    name: Name
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0


Bus = Annotated[RtuBus | TcpBus, Field(discriminator="type")]


class ModbusSource(StrictModel):
    """One Modbus unit on a bus, read as its firmware profile describes."""

    type: Literal["modbus"]
    name: Name
    bus: Name
    unit: Annotated[int, Field(ge=0, le=247)] = 1
    profile: str = Field(description="firmware profile name or path to its YAML file")
    interval_s: Seconds = 60


class SerialLineSource(StrictModel):
    """An instrument streaming text lines on its own serial port; the newest valid line is
    the reading at each tick, and one older than `max_age_s` is no reading at all."""

    type: Literal["serial_lines"]
    name: Name
    port: Annotated[str, Field(min_length=1)]
    profile: str = Field(description="line profile name or path to its YAML file")
    interval_s: Seconds = 60
    max_age_s: Annotated[float, Field(gt=0, le=3600)] = 5.0


class WifiApSource(StrictModel):
    """The access point's associated-client count, from iw or hostapd on the AP."""

    type: Literal["wifi_ap"]
    name: Name
    interface: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,15}$")] = "wlan0"
    method: Literal["iw", "hostapd"] = "iw"
    command: list[str] | None = Field(
        default=None,
        description="run this instead, e.g. [ssh, ap, iw, dev, wlan0, station, dump]",
    )
    interval_s: Seconds = 60
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0


class SnmpApSource(StrictModel):
    """A managed access point read over SNMP, for units a box cannot run `iw` on.

    Secrets never sit in the config, which is copied around and shown: the v2c community
    and the v3 keys are each read from a file. v3 is always authPriv (authenticated and
    encrypted); `vendor` chooses the MIB the client counts come from."""

    type: Literal["snmp_ap"]
    name: Name
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 161
    version: Annotated[Literal["2c", "3"], BeforeValidator(str)] = "2c"
    community_file: RelativePath | None = Field(
        default=None, description="version 2c: file holding the community"
    )
    user: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, description="version 3: the USM user"
    )
    auth_protocol: Literal["sha", "sha224", "sha256", "sha384", "sha512", "md5"] = "sha"
    auth_key_file: RelativePath | None = None
    priv_protocol: Literal["aes", "aes192", "aes256"] = "aes"
    priv_key_file: RelativePath | None = None
    vendor: Literal["unifi", "mikrotik", "cisco-wlc", "none"] = Field(
        description="whose MIB holds the client counts: unifi (UBNT-UniFi-MIB), mikrotik"
        " (MIKROTIK-MIB), cisco-wlc (AIRESPACE-WIRELESS-MIB, on the controller), or none"
    )
    interfaces: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None,
        description="ifName of the interfaces whose traffic is reported; every one if unset",
    )
    interval_s: Seconds = 60
    timeout_s: Annotated[float, Field(gt=0, le=30)] = 2.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1

    @model_validator(mode="after")
    def _credentials_fit_version(self) -> Self:
        v3_keys = ("user", "auth_key_file", "priv_key_file")
        if self.version == "2c":
            if self.community_file is None:
                raise ValueError(_("version 2c needs community_file"))
            given = [key for key in v3_keys if getattr(self, key) is not None]
            if given:
                raise ValueError(_("{keys}: only for version 3").format(keys=", ".join(given)))
        else:
            missing = [key for key in v3_keys if getattr(self, key) is None]
            if missing:
                raise ValueError(_("version 3 needs {keys}").format(keys=", ".join(missing)))
            if self.community_file is not None:
                raise ValueError(_("community_file: only for version 2c"))
        return self


SourceSettings = Annotated[
    ModbusSource | SerialLineSource | WifiApSource | SnmpApSource, Field(discriminator="type")
]


class OcrSettings(StrictModel):
    """How plates are read: ONNX Runtime's threads and providers (CUDAExecutionProvider
    or TensorrtExecutionProvider on a Jetson), the scale text is looked for at, and
    models that replace the packaged PP-OCR ones."""

    threads: Annotated[int, Field(ge=1, le=16)] = 2
    providers: Annotated[tuple[str, ...], Field(min_length=1)] = ("CPUExecutionProvider",)
    side_px: Annotated[int, Field(ge=160, le=4096)] = Field(
        default=768, description="the frame's longer side when looking for text"
    )
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.5
    det_model: RelativePath | None = None
    rec_model: RelativePath | None = None
    rectify: bool = Field(
        default=True,
        description="straighten tilted rows and detected plates before reading them; off,"
        " a camera reads upright text only, a few milliseconds a plate cheaper",
    )
    second_look: bool = Field(
        default=True,
        description="without a `detector`, also read the plates the shipped plate detector"
        " finds where the text search read none, straightened, with the shipped plate"
        " recogniser (about 7 ms a frame and 20 ms a plate)",
    )


class CameraSettings(StrictModel):
    """A camera whose frames are read for plates: an RTSP or HTTP stream, a USB camera
    (`usb:0`), or a video file. The newest frame is always the one read; `max_fps` caps
    how many are, `roi` (x, y, width, height) limits where."""

    name: Name
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    max_fps: Annotated[float, Field(gt=0, le=60)] = 10.0
    roi: (
        tuple[
            Annotated[int, Field(ge=0)],
            Annotated[int, Field(ge=0)],
            Annotated[int, Field(ge=16)],
            Annotated[int, Field(ge=16)],
        ]
        | None
    ) = None
    detector: RelativePath | None = Field(
        default=None,
        description="a plate detector searched first: `builtin` (the shipped model, still"
        " in training: it misses plates a text search finds), this project's model, or a"
        " YOLO-layout ONNX file",
    )
    ocr: OcrSettings = OcrSettings()
    gap_s: Annotated[float, Field(gt=0, le=60)] = Field(
        default=1.0, description="a plate unseen this long has left: its event is decided"
    )
    repeat_after_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=60.0, description="the same plate at this camera is not reported again sooner"
    )
    min_frames: Annotated[int, Field(ge=1, le=100)] = Field(
        default=2, description="reads a vehicle needs before it is an event"
    )
    crop_max_kb: Annotated[int, Field(ge=2, le=96)] = 24
    full_frame_every: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5,
        description="while plates are tracked, search only around them, and the whole "
        "frame every this many frames (1: always the whole frame)",
    )
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0


class HealthSettings(StrictModel):
    interval_s: Seconds = 60


class OutboxSettings(StrictModel):
    """How much an outage may queue on the box, what gives way first when it is full, and
    when a message may be forgotten.

    A message stays until the collector confirms it committed it (`delete_on: commit`);
    one the broker acknowledged but the collector did not confirm within `resend_after_s`
    goes out again, so a broker or collector that dies holding it costs a repeat, never
    the message. `delete_on: broker_ack` forgets a message on the broker's
    acknowledgement, for a collector that does not confirm.

    The outbox's files (database pages in use and write-ahead log) stay within `max_mb`,
    and never grow into the last `keep_free_mb` of their filesystem, which the rest of the
    box needs too. When a bound is hit, messages never sent are dropped first, channel by
    channel in `drop_order` (health first by default: a day-old heartbeat is worth least),
    each channel's oldest first or newest first; only when that is not enough, messages
    sent but unconfirmed, which the store may already hold. A message already handed to
    the uplink is never dropped. Both are counted, persistently: the never-sent ones are
    reported in health as `outbox_dropped` and the collector sees the same number as
    gaps."""

    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 256.0
    max_age_h: Annotated[float, Field(gt=0, le=24 * 365)] = 24 * 7.0
    drop_order: Annotated[
        tuple[Literal["health", "telemetry", "plate"], ...], Field(min_length=3, max_length=3)
    ] = ("health", "telemetry", "plate")
    drop_within: Literal["oldest", "newest"] = "oldest"
    backlog_after_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=10.0, description="a message sent this much later than made is backlog"
    )
    delete_on: Literal["commit", "broker_ack"] = Field(
        default="commit",
        description="forget a message when the collector confirms it (commit), or when the "
        "broker acknowledges it (broker_ack, for a collector that does not confirm)",
    )
    resend_after_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=20.0, description="a message sent but unconfirmed this long is sent again"
    )
    keep_free_mb: Annotated[float, Field(ge=0, le=1_000_000)] = Field(
        default=0.5, description="the outbox never grows into this much of its filesystem"
    )

    @model_validator(mode="after")
    def _each_channel_once(self) -> Self:
        if len(set(self.drop_order)) != len(self.drop_order):
            raise ValueError(_("drop_order names each of health, telemetry, plate once"))
        return self


class AgentConfig(StrictModel):
    device: DeviceSettings
    broker: BrokerSettings = BrokerSettings()
    state_dir: RelativePath = Field(
        default=Path("/var/lib/edge-agent"), description="outbox and sequence numbers live here"
    )
    profiles_dir: RelativePath | None = Field(
        default=None, description="extra folder searched for firmware profiles before built-ins"
    )
    collector_key: RelativePath | None = Field(
        default=None,
        description="the collector's public key (PEM): configs pushed signed by it are taken;"
        " without it the box takes no pushed config",
    )
    releases_dir: RelativePath | None = Field(
        default=None,
        description="the install folder holding releases/<version> and the `current` link"
        " (scripts/install-edge.sh makes /opt/edge-agent so); with collector_key, releases"
        " signed by the collector are taken, without it no software update",
    )
    buses: list[Bus] = Field(default_factory=list)
    sources: list[SourceSettings] = Field(default_factory=list)
    cameras: list[CameraSettings] = Field(default_factory=list)
    health: HealthSettings = HealthSettings()
    outbox: OutboxSettings = OutboxSettings()

    @model_validator(mode="after")
    def _names_are_unique_and_known(self) -> Self:
        for unique, names in (
            (_("bus names must be unique; repeated: {names}"), [b.name for b in self.buses]),
            (
                _("source and camera names must be unique; repeated: {names}"),
                [s.name for s in (*self.sources, *self.cameras)],
            ),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(unique.format(names=", ".join(dupes)))
        known = {b.name for b in self.buses}
        for source in self.sources:
            if isinstance(source, ModbusSource) and source.bus not in known:
                raise ValueError(
                    _(
                        "source {source} is on bus {bus}, which is not among the buses: {buses}"
                    ).format(
                        source=repr(source.name),
                        bus=repr(source.bus),
                        buses=", ".join(sorted(known)) or _("none configured"),
                    )
                )
        return self


class LoadedAgent(StrictModel):
    """A validated config with every source's firmware profile loaded and every serial
    bus's settings settled."""

    config: AgentConfig
    profiles: dict[str, Profile | LineProfile]
    buses: dict[str, RtuBus | TcpBus]


_SERIAL_FIELDS = ("baudrate", "parity", "stopbits", "bytesize")


def _settle_serial(bus: RtuBus, profiles: list[Profile]) -> tuple[RtuBus, str | None]:
    """Fill the bus's unset serial settings from its units' profiles, or say why not."""
    stated = [p.serial for p in profiles if p.serial is not None]
    if profiles and not stated and any(getattr(bus, f) is None for f in _SERIAL_FIELDS):
        unset = ", ".join(f for f in _SERIAL_FIELDS if getattr(bus, f) is None)
        return bus, _(
            "no profile on this bus states its serial settings; set {keys} on the bus"
        ).format(keys=unset)
    chosen: dict[str, object] = {}
    for field in _SERIAL_FIELDS:
        if getattr(bus, field) is not None:
            continue
        wanted = {getattr(s, field) for s in stated} or {getattr(SerialSettings(), field)}
        if len(wanted) > 1:
            return bus, _(
                "the units' profiles disagree on {key} ({values}); set {key} on the bus"
            ).format(key=field, values=", ".join(map(str, sorted(wanted))))
        chosen[field] = wanted.pop()
    return bus.model_copy(update=chosen), None


def load_agent(path: Path) -> LoadedAgent:
    config = load_model(path, AgentConfig)
    search = [config.profiles_dir] if config.profiles_dir else []
    profiles: dict[str, Profile | LineProfile] = {}
    for index, source in enumerate(config.sources):
        if isinstance(source, WifiApSource | SnmpApSource):
            continue
        try:
            profile_path = find_profile(source.profile, search, path.parent)
        except LookupError as exc:
            raise ConfigError(path, [(f"sources[{index}].profile", str(exc))]) from None
        profile = load_profile(profile_path)
        wanted = Profile if isinstance(source, ModbusSource) else LineProfile
        if not isinstance(profile, wanted):
            problem = _("profile {profile} is for {protocol}, not a {type} source").format(
                profile=repr(source.profile), protocol=profile.protocol, type=source.type
            )
            raise ConfigError(path, [(f"sources[{index}].profile", problem)])
        profiles[source.name] = profile
    buses: dict[str, RtuBus | TcpBus] = {}
    for index, bus in enumerate(config.buses):
        if isinstance(bus, RtuBus):
            on_bus = [
                p
                for s in config.sources
                if isinstance(s, ModbusSource)
                and s.bus == bus.name
                and isinstance(p := profiles[s.name], Profile)
            ]
            bus, unsettled = _settle_serial(bus, on_bus)
            if unsettled:
                raise ConfigError(path, [(f"buses[{index}]", unsettled)])
        buses[bus.name] = bus
    return LoadedAgent(config=config, profiles=profiles, buses=buses)
