"""Modbus units over TCP against real pymodbus servers serving their firmware profiles."""

import asyncio
import random

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge_agent.config import TcpBus
from edge_agent.modbus.bus import ModbusBus
from edge_agent.modbus.simulator import serve_tcp, simulated_value
from edge_agent.modbus.source import ModbusReader
from edge_agent.profiles import Point, StatusBit, StatusWord, builtin_profiles_dir, load_profile
from edge_agent.sources.base import SourceError
from iotwire.messages import Quality
from testbed.waiting import free_port

PROFILES = sorted(
    p.stem for p in builtin_profiles_dir().glob("*.yaml") if load_profile(p).protocol == "modbus"
)


def profile(name: str):
    return load_profile(builtin_profiles_dir() / f"{name}.yaml")


def tcp_bus(port: int) -> ModbusBus:
    return ModbusBus(TcpBus(type="tcp", name="gw", host="127.0.0.1", port=port, timeout_s=1))


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.servers
def test_reads_every_point_within_its_simulated_range(name):
    async def main():
        port = free_port()
        server = await serve_tcp({7: profile(name)}, "127.0.0.1", port)
        bus = tcp_bus(port)
        try:
            return await ModbusReader("s", bus, 7, profile(name)).read()
        finally:
            bus.close()
            await server.shutdown()

    readings = asyncio.run(main())
    chosen = profile(name)
    assert [r.parameter for r in readings] == [p.parameter for p in chosen.points]
    for point, reading in zip(chosen.points, readings, strict=True):
        low, high = point.typical or point.range
        margin = (high - low) * 0.1 + abs(point.scale)
        assert low - margin <= reading.value <= high + margin, point.parameter
        assert reading.unit == point.unit
        assert reading.quality is Quality.OK


@pytest.mark.servers
def test_units_behind_one_gateway_share_one_connection():
    async def main():
        port = free_port()
        units = {1: profile("pq-sim-air"), 2: profile("pq-sim-noise"), 3: profile("pq-sim-water")}
        server = await serve_tcp(units, "127.0.0.1", port)
        bus = tcp_bus(port)
        readers = [ModbusReader(f"u{u}", bus, u, p) for u, p in units.items()]
        try:
            for _ in range(3):
                results = await asyncio.gather(*(r.read() for r in readers))
            return bus.stats, [len(r) for r in results], len(server.active_connections)
        finally:
            bus.close()
            await server.shutdown()

    stats, sizes, connections = asyncio.run(main())
    assert sizes == [8, 3, 6]
    assert stats.reopens == 1
    assert connections == 1


@pytest.mark.servers
def test_a_modbus_exception_names_bus_unit_and_registers():
    async def main():
        served = profile("pq-sim-noise")
        extra = Point(parameter="leq_1h", unit="dBA", table="input", address=40, type="uint16")
        expected = served.model_copy(update={"points": (*served.points, extra)})
        port = free_port()
        server = await serve_tcp({1: served}, "127.0.0.1", port)
        bus = tcp_bus(port)
        try:
            await ModbusReader("slm", bus, 1, expected).read()
        finally:
            bus.close()
            await server.shutdown()

    with pytest.raises(
        SourceError,
        match=r"bus gw unit 1: input registers 40-40: exception 2 \(illegal data address\)",
    ):
        asyncio.run(main())


@pytest.mark.servers
def test_an_unreachable_device_backs_off_then_recovers():
    async def main():
        port = free_port()
        bus = tcp_bus(port)
        reader = ModbusReader("sonde", bus, 1, profile("pq-sim-water"))
        with pytest.raises(SourceError, match=r"cannot open 127\.0\.0\.1"):
            await reader.read()
        with pytest.raises(SourceError, match="is down, next attempt in"):
            await reader.read()
        server = await serve_tcp({1: profile("pq-sim-water")}, "127.0.0.1", port)
        try:
            await asyncio.sleep(0.6)
            return await reader.read()
        finally:
            bus.close()
            await server.shutdown()

    assert len(asyncio.run(main())) == 6


def test_simulated_values_stay_in_the_typical_band():
    rng = random.Random(1)
    for point in profile("pq-sim-air").points:
        low, high = point.typical
        values = [simulated_value(point, t * 7.0, 0.3, rng) for t in range(500)]
        assert min(values) >= low - 0.05 * (high - low)
        assert max(values) <= high + 0.05 * (high - low)


@pytest.mark.servers
def test_status_bits_and_no_value_codes_become_reading_quality():
    base = profile("pq-sim-water")
    status = StatusWord(
        address=20,
        bits={
            0: StatusBit(meaning="sensor fault", quality="fault"),
            2: StatusBit(meaning="calibration in progress", quality="calibrating"),
        },
    )
    level = Point(
        parameter="level",
        unit="m",
        address=11,
        type="int16",
        scale=0.01,
        invalid=(32767,),
        typical=(327.67, 327.67),
    )
    device = base.model_copy(update={"points": (*base.points, level), "status": status})

    async def main():
        port = free_port()
        server = await serve_tcp({1: device}, "127.0.0.1", port)
        bus = tcp_bus(port)
        reader = ModbusReader("sonde", bus, 1, device)
        client = AsyncModbusTcpClient("127.0.0.1", port=port)
        await client.connect()
        try:
            results = {"clear": await reader.read()}
            await client.write_register(20, 0b100, device_id=1)
            results["calibrating"] = await reader.read()
            await client.write_register(20, 0b101, device_id=1)
            results["fault"] = await reader.read()
            return results
        finally:
            client.close()
            bus.close()
            await server.shutdown()

    results = asyncio.run(main())
    clear = {r.parameter: r for r in results["clear"]}
    assert clear["level"].value is None
    assert clear["level"].quality is Quality.FAULT
    assert all(r.quality is Quality.OK for name, r in clear.items() if name != "level")
    assert "status.word" not in clear
    assert {r.quality for r in results["calibrating"] if r.parameter != "level"} == {
        Quality.CALIBRATING
    }
    fault = [r for r in results["fault"] if r.parameter != "level"]
    assert {r.quality for r in fault} == {Quality.FAULT}
    assert all(r.value is not None for r in fault)  # the device's value is kept for diagnosis
