"""What a technician wires to a box, as provisioning writes it into its config: firmware
profiles by name and unit id, on one RS-485 line or one Modbus TCP host; a pole's
cameras; an access point's wireless interface.

Flags say it in one line per sensor (`--sensor yosemitech-y532:1`); the same parsing
serves the questions asked at a terminal, so both paths write the same config.
"""

import glob
import re
from dataclasses import dataclass
from typing import Any

from edge_agent.i18n import _
from edge_agent.profiles import builtin_profiles_dir, find_profile, load_profile

SENSOR_FORMAT = _("PROFILE:UNIT[:NAME], e.g. yosemitech-y532:1:ph")
SERIAL_BUS, TCP_BUS = "rs485-1", "modbus-tcp"
DEFAULT_INTERVAL_S = 60
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Sensor:
    profile: str
    unit: int
    name: str


@dataclass(frozen=True)
class Wiring:
    """Where the sensors hang: an RS-485 adapter (`serial`), or a Modbus TCP device or
    gateway (`host`). Serial settings left out come from the profiles; a parity given
    means the common 8 data bits and 1 stop bit (8N1, 8E1), as nearly every RS-485
    sensor ships."""

    serial: str | None = None
    baudrate: int | None = None
    parity: str | None = None
    host: str | None = None
    port: int = 502

    def bus(self) -> dict[str, Any]:
        if self.host is not None:
            return {"name": TCP_BUS, "type": "tcp", "host": self.host, "port": self.port}
        bus: dict[str, Any] = {"name": SERIAL_BUS, "type": "rtu", "port": self.serial}
        if self.baudrate is not None:
            bus["baudrate"] = self.baudrate
        if self.parity is not None:
            bus |= {"parity": self.parity, "stopbits": 1, "bytesize": 8}
        return bus


def profile_names() -> list[str]:
    return sorted(p.stem for p in builtin_profiles_dir().glob("*.yaml"))


def parse_sensor(text: str) -> Sensor:
    """A sensor as typed; ValueError naming what is wrong."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(
            _("sensor {text}: write it {format}").format(text=repr(text), format=SENSOR_FORMAT)
        )
    profile = parts[0]
    try:
        found = load_profile(find_profile(profile, [], builtin_profiles_dir()))
    except LookupError as exc:
        raise ValueError(_("sensor {text}: {why}").format(text=repr(text), why=exc)) from None
    if found.protocol != "modbus":
        raise ValueError(
            _(
                "sensor {text}: {profile} streams text lines on a serial port, not Modbus;"
                " add it as a serial_lines source in the config"
            ).format(text=repr(text), profile=profile)
        )
    try:
        unit = int(parts[1])
    except ValueError:
        raise ValueError(
            _("sensor {text}: unit {unit} is not a number").format(
                text=repr(text), unit=repr(parts[1])
            )
        ) from None
    if not 1 <= unit <= 247:
        raise ValueError(_("sensor {text}: unit ids run from 1 to 247").format(text=repr(text)))
    name = parts[2] if len(parts) == 3 else f"{profile}-{unit}"
    if not _NAME.match(name):
        raise ValueError(
            _("sensor {text}: name {name}: lowercase letters, digits, - _ .").format(
                text=repr(text), name=repr(name)
            )
        )
    return Sensor(profile, unit, name)


def serial_adapters() -> list[str]:
    """Serial adapters on this machine, by their stable names first."""
    stable = sorted(glob.glob("/dev/serial/by-id/*"))
    return stable or sorted(glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*"))


def wired(config: dict[str, Any], sensors: list[Sensor], wiring: Wiring) -> dict[str, Any]:
    """`config` with its Modbus buses and sources replaced by these sensors on this
    wiring; its other sources (cameras, access points, the host) kept."""
    bus = wiring.bus()
    modbus_buses = {b.get("name") for b in config.get("buses", [])}
    kept = [s for s in config.get("sources", []) if s.get("bus") not in modbus_buses]
    sources = [
        {
            "name": s.name,
            "type": "modbus",
            "bus": bus["name"],
            "unit": s.unit,
            "profile": s.profile,
            "interval_s": DEFAULT_INTERVAL_S,
        }
        for s in sensors
    ]
    return {**config, "buses": [bus], "sources": sources + kept}


def parse_camera(text: str) -> tuple[str, str]:
    """`NAME=URL`: a camera of the pole and where its stream is (rtsp://..., a V4L2
    device such as /dev/video0, or a file for a bench test)."""
    name, sep, url = text.partition("=")
    if not sep or not _NAME.fullmatch(name) or not url:
        raise ValueError(
            _("--camera {text}: give NAME=URL, e.g. north=rtsp://10.20.0.9/stream1").format(
                text=repr(text)
            )
        )
    return name, url


def with_cameras(config: dict[str, Any], cameras: list[tuple[str, str]]) -> dict[str, Any]:
    """`config` with these cameras, each set up as the first camera it had (region,
    reader settings), so the template's or the technician's tuning carries over."""
    model = dict(config.get("cameras", [{}])[0])
    return {**config, "cameras": [model | {"name": n, "url": u} for n, u in cameras]}


def with_wifi_interface(config: dict[str, Any], interface: str) -> dict[str, Any]:
    """`config` with its access-point sources reading this wireless interface."""
    sources = [
        s | {"interface": interface} if s.get("type") == "wifi_ap" else s
        for s in config.get("sources", [])
    ]
    return {**config, "sources": sources}
