"""The Modbus TCP reader against a real pymodbus server serving a firmware profile."""

import asyncio
import random

import pytest

from edge_agent.config import ModbusTcpSource
from edge_agent.profiles import Point, builtin_profiles_dir, load_profile
from edge_agent.simulator import serve, simulated_value
from edge_agent.sources.base import SourceError
from edge_agent.sources.modbus import ModbusTcpReader
from iotwire.messages import Quality
from tests.helpers import free_port

PROFILES = sorted(p.stem for p in builtin_profiles_dir().glob("*.yaml"))


def settings_for(profile: str, port: int, unit: int = 1) -> ModbusTcpSource:
    return ModbusTcpSource(
        type="modbus_tcp",
        name="s",
        profile=profile,
        host="127.0.0.1",
        port=port,
        unit=unit,
        timeout_s=1,
    )


async def read_from_simulator(profile_name: str, unit: int = 1):
    profile = load_profile(builtin_profiles_dir() / f"{profile_name}.yaml")
    port = free_port()
    server = await serve(profile, "127.0.0.1", port, unit=unit)
    reader = ModbusTcpReader(settings_for(profile_name, port, unit), profile)
    try:
        return profile, await reader.read()
    finally:
        await reader.close()
        await server.shutdown()


@pytest.mark.parametrize("name", PROFILES)
def test_reads_every_point_within_its_simulated_range(name):
    profile, readings = asyncio.run(read_from_simulator(name, unit=7))
    assert [r.parameter for r in readings] == [p.parameter for p in profile.points]
    for point, reading in zip(profile.points, readings, strict=True):
        low, high = point.typical or point.range
        margin = (high - low) * 0.1 + abs(point.scale)
        assert low - margin <= reading.value <= high + margin, point.parameter
        assert reading.unit == point.unit
        assert reading.quality is Quality.OK


def test_a_modbus_exception_is_a_source_error_that_names_the_registers():
    async def main():
        served = load_profile(builtin_profiles_dir() / "pq-sim-noise.yaml")
        extra = Point(parameter="leq_1h", unit="dBA", table="input", address=40, type="uint16")
        expected = served.model_copy(update={"points": (*served.points, extra)})
        port = free_port()
        server = await serve(served, "127.0.0.1", port)
        reader = ModbusTcpReader(settings_for("pq-sim-noise", port), expected)
        try:
            await reader.read()
        finally:
            await reader.close()
            await server.shutdown()

    with pytest.raises(SourceError, match=r"refused input registers 40-40 \(exception code 2\)"):
        asyncio.run(main())


def test_an_unreachable_device_is_a_source_error():
    async def main():
        profile = load_profile(builtin_profiles_dir() / "pq-sim-air.yaml")
        reader = ModbusTcpReader(settings_for("pq-sim-air", free_port()), profile)
        try:
            await reader.read()
        finally:
            await reader.close()

    with pytest.raises(SourceError, match="cannot connect"):
        asyncio.run(main())


def test_the_reader_recovers_when_the_device_comes_back():
    async def main():
        profile = load_profile(builtin_profiles_dir() / "pq-sim-water.yaml")
        port = free_port()
        reader = ModbusTcpReader(settings_for("pq-sim-water", port), profile)
        with pytest.raises(SourceError):
            await reader.read()
        server = await serve(profile, "127.0.0.1", port)
        try:
            return await reader.read()
        finally:
            await reader.close()
            await server.shutdown()

    readings = asyncio.run(main())
    assert len(readings) == 6


def test_simulated_values_stay_in_the_typical_band():
    profile = load_profile(builtin_profiles_dir() / "pq-sim-air.yaml")
    rng = random.Random(1)  # noqa: S311
    for point in profile.points:
        low, high = point.typical
        values = [simulated_value(point, t * 7.0, 0.3, rng) for t in range(500)]
        assert min(values) >= low - 0.05 * (high - low)
        assert max(values) <= high + 0.05 * (high - low)
