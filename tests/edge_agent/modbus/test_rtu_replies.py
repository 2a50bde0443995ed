"""What a unit answers on a real RTU line (socat pseudo-terminals, pyserial on both ends):
a reply is good data only if it answers the request that was sent."""

import asyncio
import struct
import threading

import pytest
import serial

from edge_agent.config import RtuBus
from edge_agent.modbus.bus import ModbusBus
from edge_agent.profiles import Table
from edge_agent.sources.base import SourceError


def crc16(frame: bytes) -> bytes:
    """Modbus RTU's CRC-16 (polynomial 0xA001, start 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


class CraftedUnit:
    """The unit's end of the line: reads each request and answers it with the registers
    it holds, under the function code the test sets, in a frame with a correct CRC."""

    def __init__(self, port: str, registers: list[int]) -> None:
        self._port = serial.Serial(port, baudrate=9600, timeout=0.05)
        self._registers = registers
        self.function: int | None = None  # None: the function that was asked
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                request = self._port.read(8)  # unit, function, start, count, CRC
            except serial.SerialException:  # the agent's end is not open yet, or closed
                self._stop.wait(0.05)
                continue
            if len(request) < 8:
                continue
            self.requests.append(request)
            unit, asked, start, count = struct.unpack(">BBHH", request[:6])
            values = self._registers[start : start + count]
            body = struct.pack(
                f">BBB{len(values)}H", unit, self.function or asked, 2 * len(values), *values
            )
            self._port.write(body + crc16(body))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._port.close()


def test_a_reply_of_another_function_is_a_fault_and_a_right_one_is_read(serial_pair):
    unit = CraftedUnit(serial_pair.device_side, registers=[101, 202, 303, 404])
    settings = RtuBus(
        type="rtu",
        name="rs485-1",
        port=serial_pair.agent_side,
        baudrate=9600,
        parity="N",
        stopbits=1,
        bytesize=8,
        timeout_s=0.5,
    )

    async def main() -> tuple[str, list[int], list[int], int]:
        bus = ModbusBus(settings)
        try:
            unit.function = 0x04  # input registers, where holding ones were asked for
            with pytest.raises(SourceError) as caught:
                await bus.read_registers(7, Table.HOLDING, 1, 2)
            unit.function = None
            holding = await bus.read_registers(7, Table.HOLDING, 1, 2)
            inputs = await bus.read_registers(7, Table.INPUT, 0, 3)
            return str(caught.value), holding, inputs, bus.stats.link_errors
        finally:
            bus.close()

    try:
        fault, holding, inputs, link_errors = asyncio.run(main())
    finally:
        unit.close()
    assert fault == (
        "bus rs485-1 unit 7: holding registers 1-2: answered function 0x04, asked 0x03"
    )
    assert (holding, inputs) == ([202, 303], [101, 202, 303])
    assert [r[:2] for r in unit.requests] == [b"\x07\x03", b"\x07\x03", b"\x07\x04"]
    assert link_errors == 1
