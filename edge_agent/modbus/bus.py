"""One Modbus bus: an RS-485 line on a serial port, or a TCP device or gateway.

Every unit on a bus shares its one connection, so requests are serialised here, with the
silent interval RTU framing requires between frames. A unit that does not answer costs
exactly its timeout and nothing more: the port stays open for the next unit. A lost port
(a USB adapter pulled out) or a lost TCP connection is reopened with backoff, and reads in
the meantime fail at once instead of waiting. Many TCP devices accept only one to four
connections, so each TCP bus keeps exactly one and reuses it.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from edge_agent.config import RtuBus, TcpBus
from edge_agent.i18n import _
from edge_agent.profiles import Table
from edge_agent.sources.base import ReopenBackoff, SourceError

log = logging.getLogger(__name__)

_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


# The function that reads each table; a reply must carry it, or it answers another request.
READ_FUNCTION = {Table.HOLDING: 0x03, Table.INPUT: 0x04}


def exception_name(code: int) -> str:
    return _EXCEPTION_NAMES.get(code, "unknown")


def silent_interval_s(baudrate: int) -> float:
    """3.5 character times between RTU frames (11 bits a character); 1.75 ms above 19200 baud."""
    return 1.75e-3 if baudrate > 19200 else 3.5 * 11 / baudrate


@dataclass
class BusStats:
    requests: int = 0
    timeouts: int = 0
    exceptions: int = 0
    link_errors: int = 0
    reopens: int = 0


class ModbusBus:
    def __init__(self, settings: RtuBus | TcpBus) -> None:
        self.name = settings.name
        self.stats = BusStats()
        self._lock = asyncio.Lock()
        self._last_frame = 0.0
        self._reopen = ReopenBackoff()
        self._last_open_error = ""
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient
        # pymodbus must not retry or reconnect on its own: pacing is this class's job.
        if isinstance(settings, RtuBus):
            serial = (settings.baudrate, settings.parity, settings.stopbits, settings.bytesize)
            if None in serial:
                raise ValueError(f"bus {settings.name}: serial settings unsettled; use load_agent")
            self.where = settings.port
            self._gap_s = silent_interval_s(settings.baudrate or 0)
            self._client = AsyncModbusSerialClient(
                settings.port,
                framer=FramerType.RTU,
                baudrate=settings.baudrate or 0,
                parity=settings.parity or "N",
                stopbits=settings.stopbits or 1,
                bytesize=settings.bytesize or 8,
                timeout=settings.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        else:
            self.where = f"{settings.host}:{settings.port}"
            self._gap_s = 0.0
            self._client = AsyncModbusTcpClient(
                settings.host,
                port=settings.port,
                timeout=settings.timeout_s,
                retries=0,
                reconnect_delay=0,
            )

    async def _ensure_open(self) -> None:
        if self._client.connected:
            return
        if wait := self._reopen.wait_left():
            raise SourceError(
                _("bus {bus} ({where}) is down, next attempt in {seconds} s: {why}").format(
                    bus=self.name,
                    where=self.where,
                    seconds=f"{wait:.1f}",
                    why=self._last_open_error,
                )
            )
        opened = False
        try:
            opened = await self._client.connect()
        except (OSError, ModbusException) as exc:
            self._last_open_error = str(exc)
        if opened:
            if self._reopen.succeeded():
                log.info("bus %s (%s) is back", self.name, self.where)
            self.stats.reopens += 1
            return
        self._last_open_error = self._last_open_error or _("cannot open")
        self._reopen.failed()
        raise SourceError(
            _("bus {bus}: cannot open {where}: {why}").format(
                bus=self.name, where=self.where, why=self._last_open_error
            )
        )

    async def _exchange(
        self, unit: int, table: Table, start: int, count: int, what: str
    ) -> ModbusPDU:
        async with self._lock:
            await self._ensure_open()
            pause = self._last_frame + self._gap_s - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            read = (
                self._client.read_holding_registers
                if table is Table.HOLDING
                else self._client.read_input_registers
            )
            self.stats.requests += 1
            try:
                return await read(start, count=count, device_id=unit)
            except (ConnectionException, OSError) as exc:
                self.stats.link_errors += 1
                self._client.close()
                raise SourceError(_("{what}: link lost: {why}").format(what=what, why=exc)) from exc
            except (ModbusIOException, TimeoutError) as exc:
                self.stats.timeouts += 1
                raise SourceError(
                    _("{what}: no valid answer ({why})").format(what=what, why=exc)
                ) from exc
            except ModbusException as exc:
                self.stats.link_errors += 1
                raise SourceError(f"{what}: {exc}") from exc
            finally:
                self._last_frame = time.monotonic()

    async def read_registers(self, unit: int, table: Table, start: int, count: int) -> list[int]:
        """`count` registers from `unit`, or a SourceError naming bus, unit and registers."""
        what = _("bus {bus} unit {unit}: {table} registers {first}-{last}").format(
            bus=self.name, unit=unit, table=table, first=start, last=start + count - 1
        )
        response = await self._exchange(unit, table, start, count, what)
        if response.isError():
            self.stats.exceptions += 1
            code = int(getattr(response, "exception_code", 0))
            raise SourceError(
                _("{what}: exception {code} ({name})").format(
                    what=what, code=code, name=exception_name(code)
                )
            )
        if response.function_code != READ_FUNCTION[table]:
            # pymodbus hands back whatever valid frame came from the unit: a reply of
            # another function holds other registers, or none of this request's at all.
            self.stats.link_errors += 1
            raise SourceError(
                _("{what}: answered function {answered}, asked {asked}").format(
                    what=what,
                    answered=f"{response.function_code:#04x}",
                    asked=f"{READ_FUNCTION[table]:#04x}",
                )
            )
        if len(response.registers) != count:
            raise SourceError(
                _("{what}: answered {count} registers").format(
                    what=what, count=len(response.registers)
                )
            )
        return list(response.registers)

    async def probe(self, unit: int) -> str | None:
        """What `unit` answers to a read of holding register 0, or None if nothing does.
        An exception is an answer too: something with that id is on the line."""
        what = _("bus {bus} unit {unit}: probe").format(bus=self.name, unit=unit)
        try:
            response = await self._exchange(unit, Table.HOLDING, 0, 1, what)
        except SourceError:
            if not self._client.connected:
                raise
            return None
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            return _("exception {code} ({name})").format(code=code, name=exception_name(code))
        return _("holding register 0 = {value}").format(value=response.registers[0])

    def close(self) -> None:
        self._client.close()
