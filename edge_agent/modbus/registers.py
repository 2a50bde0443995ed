"""From Modbus registers to engineering values and back, as a profile describes them.

The type conversion itself is pymodbus's; this module adds what profiles need on top:
byte order inside a register (the "CDAB"/"BADC" variants field devices use), scaling, and
grouping adjacent points into as few requests as the device allows.
"""

import math
from dataclasses import dataclass

from pymodbus.client.mixin import ModbusClientMixin

from edge_agent.profiles import Point, Profile, RegisterType, Table

_DT = ModbusClientMixin.DATATYPE
_DATATYPE = {
    RegisterType.INT16: _DT.INT16,
    RegisterType.UINT16: _DT.UINT16,
    RegisterType.INT32: _DT.INT32,
    RegisterType.UINT32: _DT.UINT32,
    RegisterType.FLOAT32: _DT.FLOAT32,
    RegisterType.FLOAT64: _DT.FLOAT64,
}


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers of `table` from `start`, covering `points`."""

    table: Table
    start: int
    count: int
    points: tuple[Point, ...]


def plan_reads(profile: Profile) -> list[Block]:
    """Merge points whose registers touch into blocks no larger than the device accepts."""
    blocks: list[Block] = []
    for table in Table:
        current: list[Point] = []
        for point in sorted(
            (p for p in profile.registers if p.table == table), key=lambda p: p.address
        ):
            if current and (
                point.address != current[-1].end
                or point.end - current[0].address > profile.max_block
            ):
                blocks.append(_block(table, current))
                current = []
            current.append(point)
        if current:
            blocks.append(_block(table, current))
    return blocks


def _block(table: Table, points: list[Point]) -> Block:
    start = points[0].address
    return Block(table, start, points[-1].end - start, tuple(points))


def _swap_bytes(registers: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def raw_value(profile: Profile, point: Point, registers: list[int]) -> int | float:
    """The number `point`'s own registers hold, before scaling."""
    if len(registers) != point.type.width:
        raise ValueError(f"{point.parameter}: expected {point.type.width} registers")
    byte_order = point.byte_order or profile.byte_order
    word_order = point.word_order or profile.word_order
    if byte_order == "little":
        registers = _swap_bytes(registers)
    raw = ModbusClientMixin.convert_from_registers(registers, _DATATYPE[point.type], word_order)
    assert isinstance(raw, int | float)
    return raw


def decode_point(profile: Profile, point: Point, registers: list[int]) -> float:
    """Engineering value of `point` from exactly its own registers."""
    return float(raw_value(profile, point, registers)) * point.scale + point.offset


def encode_point(profile: Profile, point: Point, value: float) -> list[int]:
    """Registers a device would hold for `value`; the inverse of decode_point."""
    raw: float = (value - point.offset) / point.scale
    if point.type not in (RegisterType.FLOAT32, RegisterType.FLOAT64):
        raw = round(raw)
    word_order = point.word_order or profile.word_order
    registers = ModbusClientMixin.convert_to_registers(raw, _DATATYPE[point.type], word_order)
    if (point.byte_order or profile.byte_order) == "little":
        registers = _swap_bytes(registers)
    return registers


def decode_block(profile: Profile, block: Block, registers: list[int]) -> dict[str, float | None]:
    """Values of every point in `block`: None where the device sent its 'no value' code or a
    NaN or infinite float, which many sondes send for a parameter they do not have. One
    missing parameter is a fault reading; it does not cost the unit its other values."""
    values: dict[str, float | None] = {}
    for point in block.points:
        offset = point.address - block.start
        raw = raw_value(profile, point, registers[offset : offset + point.type.width])
        if raw in point.invalid:
            values[point.parameter] = None
            continue
        value = float(raw) * point.scale + point.offset
        values[point.parameter] = value if math.isfinite(value) else None
    return values
