"""A Modbus TCP device that behaves like the sensor a firmware profile describes.

The demo, the tests and a technician without hardware all need a device to read. Values
come from the profile's `typical` range (or its measuring range) as a slow wave with a
little noise, encoded with the profile's own types and orders, so reading the simulator
exercises exactly the decoding a real analyser does.
"""

import math
import random
import time
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_agent.modbus.registers import encode_point
from edge_agent.profiles import Point, Profile, SerialSettings, Table

PERIOD_S = 600.0


def simulated_value(point: Point, now: float, phase: float, rng: random.Random) -> float:
    low, high = point.typical or point.range or (0.0, 100.0)
    mid, swing = (low + high) / 2, (high - low) / 2
    value = mid + 0.8 * swing * math.sin(2 * math.pi * now / PERIOD_S + phase)
    return value + rng.uniform(-0.05, 0.05) * swing


def _table_block(profile: Profile, table: Table) -> list[SimData]:
    points = [p for p in profile.registers if p.table == table]
    if not points:
        return [SimData(0, count=1, datatype=DataType.INVALID)]
    start = min(p.address for p in points)
    end = max(p.end for p in points)
    return [SimData(start, count=end - start, values=0, datatype=DataType.REGISTERS)]


def simulated_device(
    profile: Profile, unit: int = 1, seed: int = 0, clock: Callable[[], float] = time.time
) -> SimDevice:
    """A SimDevice whose registers are refreshed from the profile at every read."""
    rng = random.Random(seed)  # noqa: S311 - simulation noise, not security
    phases = {p.parameter: rng.uniform(0, 2 * math.pi) for p in profile.points}
    tables = {3: Table.HOLDING, 4: Table.INPUT}

    async def refresh(
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        table = tables.get(function_code)
        now = clock()
        for point in profile.points:
            if point.table == table:
                value = simulated_value(point, now, phases[point.parameter], rng)
                index = point.address - start_address
                registers[index : index + point.type.width] = encode_point(profile, point, value)
        return None

    no_bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
    blocks = (
        no_bits,
        no_bits,
        _table_block(profile, Table.HOLDING),
        _table_block(profile, Table.INPUT),
    )
    return SimDevice(unit, simdata=blocks, action=refresh)


def _devices(units: dict[int, Profile], seed: int) -> list[SimDevice]:
    return [simulated_device(profile, unit, seed + unit) for unit, profile in units.items()]


async def serve_tcp(
    units: dict[int, Profile], host: str, port: int, seed: int = 0
) -> ModbusTcpServer:
    """Serve the units on a Modbus TCP port in the background; the caller shuts it down."""
    server = ModbusTcpServer(_devices(units, seed), address=(host, port))
    await server.serve_forever(background=True)
    return server


async def serve_rtu(
    units: dict[int, Profile], port: str, serial: SerialSettings, seed: int = 0
) -> ModbusSerialServer:
    """Serve the units as an RS-485 line on a serial port. A unit id nobody has gets
    silence, as on a real bus, not an exception."""

    def silence_absent_units(sending: bool, frame: bytes) -> bytes:
        # pymodbus answers an unknown unit with an exception; a real line stays quiet.
        return b"" if sending and frame and frame[0] not in units else frame

    server = ModbusSerialServer(
        _devices(units, seed),
        framer=FramerType.RTU,
        port=port,
        baudrate=serial.baudrate,
        parity=serial.parity,
        stopbits=serial.stopbits,
        bytesize=serial.bytesize,
        trace_packet=silence_absent_units,
    )
    await server.serve_forever(background=True)
    return server
