"""Firmware profiles: what a sensor model's registers hold, as data rather than code.

A new analyser on a station should need a YAML file in `firmware_profiles/`, not a release.
The profile carries everything the datasheet says that a reader needs: register table and
address, data type, word and byte order, scaling, unit, measuring range, and the serial
settings the device ships with.
"""

import math
import re
from enum import StrEnum
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StringConstraints,
    Tag,
    model_validator,
)

from edge_agent.i18n import _
from iotruntime.configfile import load_model
from iotwire.messages import Name, Unit

Order = Literal["big", "little"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value spans."""
        return {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}[
            self.value
        ]


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"


class SerialSettings(_Strict):
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class Point(_Strict):
    """One measured parameter: engineering value = raw * scale + offset."""

    parameter: Name
    unit: Unit
    table: Table = Table.HOLDING
    address: Annotated[int, Field(ge=0, le=65535)]
    type: RegisterType
    scale: float = 1.0
    offset: float = 0.0
    word_order: Order | None = None
    byte_order: Order | None = None
    range: tuple[float, float] | None = Field(
        default=None, description="measuring range from the datasheet; outside it is suspect"
    )
    typical: tuple[float, float] | None = Field(
        default=None, description="values the simulator produces; no effect on reading"
    )
    invalid: tuple[int, ...] = Field(
        default=(), description="raw values the device sends for 'no value', e.g. 32767"
    )

    @property
    def end(self) -> int:
        return self.address + self.type.width


class StatusBit(_Strict):
    meaning: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    quality: Literal["fault", "calibrating"]


class StatusWord(_Strict):
    """A register whose set bits say the device's readings cannot be trusted as they are."""

    table: Table = Table.HOLDING
    address: Annotated[int, Field(ge=0, le=65535)]
    type: Literal[RegisterType.UINT16, RegisterType.UINT32] = RegisterType.UINT16
    bits: Annotated[dict[Annotated[int, Field(ge=0, le=31)], StatusBit], Field(min_length=1)]

    def as_point(self) -> Point:
        return Point(
            parameter=STATUS_PARAMETER,
            unit="",
            table=self.table,
            address=self.address,
            type=self.type,
        )


STATUS_PARAMETER = "status.word"


class Profile(_Strict):
    """A Modbus device's register map."""

    model: Annotated[str, StringConstraints(min_length=1)]
    manufacturer: Annotated[str, StringConstraints(min_length=1)]
    source: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="where the register map comes from: datasheet title, revision, address"
    )
    protocol: Literal["modbus"] = "modbus"
    serial: SerialSettings | None = Field(
        default=SerialSettings(), description="null when the source does not state them"
    )
    word_order: Order = "big"
    byte_order: Order = "big"
    max_block: Annotated[int, Field(ge=1, le=125)] = Field(
        default=125, description="most registers the device answers in one read"
    )
    points: Annotated[tuple[Point, ...], Field(min_length=1)]
    status: StatusWord | None = None

    @property
    def registers(self) -> tuple[Point, ...]:
        """Every register the reader fetches: the points, and the status word if any."""
        return self.points if self.status is None else (*self.points, self.status.as_point())

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [p.parameter for p in self.registers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(_("parameter names repeat: {names}").format(names=", ".join(dupes)))
        for table in Table:
            spans = sorted(
                (p.address, p.end, p.parameter) for p in self.registers if p.table == table
            )
            for (_start, end, first), (start, _end, second) in pairwise(spans):
                if start < end:
                    raise ValueError(
                        _("{table} registers of {first} and {second} overlap").format(
                            table=table, first=first, second=second
                        )
                    )
        for p in self.points:
            if p.type.width > self.max_block:
                raise ValueError(
                    _("{parameter} spans more registers than max_block").format(
                        parameter=p.parameter
                    )
                )
        return self


GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class LineField(_Strict):
    """One value in a line: the regular expression's named group, then raw * scale + offset.
    Instruments that mark a single value as not measured (a Vaisala WXT sends `Sm=0.0#`)
    name the group holding the mark in `flag`; a mark in `invalid` makes that reading a
    fault while the rest of the line stands."""

    parameter: Name
    unit: Unit
    group: GroupName
    scale: float = 1.0
    offset: float = 0.0
    range: tuple[float, float] | None = None
    flag: GroupName | None = None
    invalid: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _flag_with_marks(self) -> Self:
        if bool(self.flag) != bool(self.invalid):
            raise ValueError(_("flag and invalid go together: the group and the marks in it"))
        return self

    def value(self, match: re.Match[str]) -> float | None:
        """None when the instrument marked the value invalid; raises ValueError when the
        text is no number."""
        if self.flag is not None and match[self.flag] in self.invalid:
            return None
        value = float(match[self.group]) * self.scale + self.offset
        if not math.isfinite(value):
            raise ValueError(f"{self.parameter} is not finite")
        return value


def vaisala_crc(text: bytes) -> bytes:
    """The three check characters the Vaisala WXT530 series appends to a line in its ASCII
    protocol with CRC (user guide M211840EN, "CRC-16 computation"): CRC-16 with polynomial
    0xA001 from 0 over the line, as 0x40 OR its top 4 bits, middle 6 bits, low 6 bits."""
    crc = 0
    for byte in text:
        crc ^= byte
        for _bit in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes((0x40 | crc >> 12, 0x40 | (crc >> 6) & 0x3F, 0x40 | crc & 0x3F))


_CHECKSUMS = {"vaisala-crc": (3, vaisala_crc)}


class LineProfile(_Strict):
    """An instrument that streams one text line per measurement over a serial port.

    A line cut short or with bytes lost (a UART overrun, a cable pulled mid-line) can
    still look like a line: the pattern must match all of it, and where the instrument
    can end each line with check characters, `checksum` names them and a line whose
    check fails is no line."""

    model: Annotated[str, StringConstraints(min_length=1)]
    manufacturer: Annotated[str, StringConstraints(min_length=1)]
    source: Annotated[str, StringConstraints(min_length=1)]
    protocol: Literal["ascii_lines"]
    serial: SerialSettings = SerialSettings()
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="regular expression a whole line (before its checksum, if any) must"
        " match, one named group per field"
    )
    encoding: Literal["ascii", "latin-1", "utf-8"] = "ascii"
    checksum: Literal["vaisala-crc"] | None = Field(
        default=None,
        description="check characters that end every line, verified before the pattern"
        " matches the rest: vaisala-crc is the ASCII protocol with CRC of Vaisala WXT530",
    )
    fields: Annotated[tuple[LineField, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _groups_exist(self) -> Self:
        try:
            groups = set(re.compile(self.pattern).groupindex)
        except re.error as exc:
            raise ValueError(
                _("pattern is not a valid regular expression: {why}").format(why=exc)
            ) from None
        named = {f.group for f in self.fields} | {f.flag for f in self.fields if f.flag}
        missing = sorted(named - groups)
        if missing:
            raise ValueError(
                _("pattern has no group named {names}").format(names=", ".join(missing))
            )
        return self

    def parse(self, line: str) -> dict[str, float | None] | None:
        """The line's values by parameter (None for one the instrument marked invalid),
        or None when it is not a valid line."""
        if self.checksum is not None:
            size, check = _CHECKSUMS[self.checksum]
            try:
                data = line.encode(self.encoding)
            except UnicodeEncodeError:
                return None
            if len(data) <= size or check(data[:-size]) != data[-size:]:
                return None
            line = data[:-size].decode(self.encoding)
        match = re.fullmatch(self.pattern, line)
        if match is None:
            return None
        try:
            return {f.parameter: f.value(match) for f in self.fields}
        except (TypeError, ValueError):
            return None


AnyProfile = Annotated[
    Annotated[Profile, Tag("modbus")] | Annotated[LineProfile, Tag("ascii_lines")],
    Discriminator(
        lambda data: (
            (data.get("protocol") if isinstance(data, dict) else getattr(data, "protocol", None))
            or "modbus"
        )
    ),
]


class _ProfileFile(RootModel[AnyProfile]):
    pass


def builtin_profiles_dir() -> Path:
    return Path(str(resources.files("firmware_profiles")))


def find_profile(name: str, search: list[Path], base_dir: Path) -> Path:
    """Resolve a profile path (relative to `base_dir`) or name: search folders, then built-ins."""
    direct = base_dir / name
    if direct.suffix in (".yaml", ".yml") and direct.is_file():
        return direct
    folders = [*search, builtin_profiles_dir()]
    for folder in folders:
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})
    raise LookupError(
        _("no firmware profile {name}; known profiles: {known}").format(
            name=repr(name), known=", ".join(known)
        )
    )


def load_profile(path: Path) -> Profile | LineProfile:
    return load_model(path, _ProfileFile).root
