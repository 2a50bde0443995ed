"""A Modbus unit on a bus, read block by block as its firmware profile describes it."""

from edge_agent.i18n import _
from edge_agent.modbus.bus import ModbusBus
from edge_agent.modbus.registers import decode_block, plan_reads
from edge_agent.profiles import STATUS_PARAMETER, Profile
from edge_agent.sources.base import SourceError, checked_reading
from iotwire.messages import Quality, Reading


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
        values: dict[str, float | None] = {}
        for block in self._blocks:
            registers = await self.bus.read_registers(
                self.unit, block.table, block.start, block.count
            )
            try:
                values.update(decode_block(self.profile, block, registers))
            except ValueError as exc:
                raise SourceError(
                    _("bus {bus} unit {unit}: {why}").format(
                        bus=self.bus.name, unit=self.unit, why=exc
                    )
                ) from exc
        override = self._status_quality(values.get(STATUS_PARAMETER))
        readings = []
        for point in self.profile.points:
            value = values[point.parameter]
            if value is None or override is Quality.FAULT:
                readings.append(
                    Reading(
                        parameter=point.parameter,
                        value=value,
                        unit=point.unit,
                        quality=Quality.FAULT,
                    )
                )
                continue
            reading = checked_reading(point.parameter, point.unit, value, point.range)
            if override is not None:
                reading = reading.model_copy(update={"quality": override})
            readings.append(reading)
        return tuple(readings)

    def _status_quality(self, word: float | None) -> Quality | None:
        """The worst quality the set status bits call for, if any bit is set."""
        status = self.profile.status
        if status is None or word is None:
            return None
        flagged = {Quality(bit.quality) for n, bit in status.bits.items() if int(word) >> n & 1}
        for quality in (Quality.FAULT, Quality.CALIBRATING):
            if quality in flagged:
                return quality
        return None

    async def close(self) -> None:
        """The bus is shared and closed by its owner."""
