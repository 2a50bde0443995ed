"""Modbus TCP analysers, read block by block as their firmware profile describes them."""

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.config import ModbusTcpSource
from edge_agent.profiles import Point, Profile, Table
from edge_agent.registers import Block, decode_block, plan_reads
from edge_agent.sources.base import SourceError
from iotwire.messages import Quality, Reading


def _quality(point: Point, value: float) -> Quality:
    if point.range is not None and not point.range[0] <= value <= point.range[1]:
        return Quality.OUT_OF_RANGE
    return Quality.OK


class ModbusTcpReader:
    def __init__(self, settings: ModbusTcpSource, profile: Profile) -> None:
        self.name = settings.name
        self._settings = settings
        self._profile = profile
        self._blocks = plan_reads(profile)
        # Reconnection is ours to pace (one attempt per poll), not a background loop's.
        self._client = AsyncModbusTcpClient(
            settings.host,
            port=settings.port,
            timeout=settings.timeout_s,
            retries=0,
            reconnect_delay=0,
        )

    @property
    def endpoint(self) -> str:
        return f"{self._settings.host}:{self._settings.port} unit {self._settings.unit}"

    async def read(self) -> tuple[Reading, ...]:
        if not self._client.connected and not await self._client.connect():
            raise SourceError(f"cannot connect to {self.endpoint}")
        values: dict[str, float] = {}
        for block in self._blocks:
            values.update(await self._read_block(block))
        return tuple(
            Reading(
                parameter=p.parameter,
                value=values[p.parameter],
                unit=p.unit,
                quality=_quality(p, values[p.parameter]),
            )
            for p in self._profile.points
        )

    async def _read_block(self, block: Block) -> dict[str, float]:
        what = f"{block.table} registers {block.start}-{block.start + block.count - 1}"
        read = (
            self._client.read_holding_registers
            if block.table is Table.HOLDING
            else self._client.read_input_registers
        )
        try:
            response = await read(block.start, count=block.count, device_id=self._settings.unit)
        except (ModbusException, OSError, TimeoutError) as exc:
            self._client.close()
            raise SourceError(f"{self.endpoint}: reading {what} failed: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise SourceError(f"{self.endpoint}: device refused {what} (exception code {code})")
        if len(response.registers) != block.count:
            raise SourceError(f"{self.endpoint}: {what}: got {len(response.registers)} registers")
        try:
            return decode_block(self._profile, block, response.registers)
        except ValueError as exc:
            raise SourceError(f"{self.endpoint}: {exc}") from exc

    async def close(self) -> None:
        self._client.close()
