"""A Modbus unit on a bus, read block by block as its firmware profile describes it."""

from edge_agent.profiles import Point, Profile
from edge_agent.registers import decode_block, plan_reads
from edge_agent.sources.base import SourceError
from edge_agent.sources.modbus_bus import ModbusBus
from iotwire.messages import Quality, Reading


def _quality(point: Point, value: float) -> Quality:
    if point.range is not None and not point.range[0] <= value <= point.range[1]:
        return Quality.OUT_OF_RANGE
    return Quality.OK


class ModbusReader:
    def __init__(self, name: str, bus: ModbusBus, unit: int, profile: Profile) -> None:
        self.name = name
        self.bus = bus
        self.unit = unit
        self.profile = profile
        self._blocks = plan_reads(profile)

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        return tuple((p.parameter, p.unit) for p in self.profile.points)

    @property
    def endpoint(self) -> str:
        return f"bus {self.bus.name} ({self.bus.where}) unit {self.unit}"

    async def read(self) -> tuple[Reading, ...]:
        values: dict[str, float] = {}
        for block in self._blocks:
            registers = await self.bus.read_registers(
                self.unit, block.table, block.start, block.count
            )
            try:
                values.update(decode_block(self.profile, block, registers))
            except ValueError as exc:
                raise SourceError(f"bus {self.bus.name} unit {self.unit}: {exc}") from exc
        return tuple(
            Reading(
                parameter=p.parameter,
                value=values[p.parameter],
                unit=p.unit,
                quality=_quality(p, values[p.parameter]),
            )
            for p in self.profile.points
        )

    async def close(self) -> None:
        """The bus is shared and closed by its owner."""
