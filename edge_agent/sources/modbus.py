"""A Modbus unit on a bus, read block by block as its firmware profile describes it."""

from edge_agent.profiles import Profile
from edge_agent.registers import decode_block, plan_reads
from edge_agent.sources.base import SourceError, checked_reading
from edge_agent.sources.modbus_bus import ModbusBus
from iotwire.messages import Reading


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
            checked_reading(p.parameter, p.unit, values[p.parameter], p.range)
            for p in self.profile.points
        )

    async def close(self) -> None:
        """The bus is shared and closed by its owner."""
