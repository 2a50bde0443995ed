"""Line-streaming instruments over real pyserial on socat pseudo-terminals."""

import asyncio
import os

import pytest

from edge_agent.config import SerialLineSource
from edge_agent.profiles import builtin_profiles_dir, load_profile
from edge_agent.sources.base import SourceError
from edge_agent.sources.serial_lines import SerialLineReader
from iotwire.messages import Quality

PROFILE = load_profile(builtin_profiles_dir() / "pq-sim-slm-ascii.yaml")


def reader_for(port: str, max_age_s: float = 1.0) -> SerialLineReader:
    settings = SerialLineSource(
        type="serial_lines", name="slm", port=port, profile="pq-sim-slm-ascii", max_age_s=max_age_s
    )
    return SerialLineReader(settings, PROFILE)


class Meter:
    """The instrument's end of the line: writes whatever the test says, as the meter would."""

    def __init__(self, port: str) -> None:
        self._fd = os.open(port, os.O_RDWR | os.O_NOCTTY)

    def send(self, data: bytes) -> None:
        os.write(self._fd, data)

    def close(self) -> None:
        os.close(self._fd)


def test_the_newest_valid_line_is_the_reading_and_garbage_is_counted(serial_pair):
    async def main():
        meter = Meter(serial_pair.device_side)
        reader = reader_for(serial_pair.agent_side)
        with pytest.raises(SourceError, match="no valid line"):
            await reader.read()  # opens the port; nothing has been sent yet
        meter.send(b"\x00\xff\xfe garbage after power-up\r\n")
        meter.send(b"LAeq=61.0 LAmax=70.5 LAmin=48.2\r\n")
        meter.send(b"LAeq=bad LAmax=70.5 LAmin=48.2\r\n")
        meter.send(b"LAeq=62.5 LAmax=150.0 LAmin=49.0\r\nLAeq=6")  # then half a line
        await asyncio.sleep(0.2)
        first = await reader.read()
        meter.send(b"3.1 LAmax=71.0 LAmin=50.0\r\n")  # the half line completed
        await asyncio.sleep(0.2)
        second = await reader.read()
        await reader.close()
        meter.close()
        return first, second, reader

    first, second, reader = asyncio.run(main())
    assert [(r.parameter, r.value, r.quality) for r in first] == [
        ("laeq", 62.5, Quality.OK),
        ("lamax", 150.0, Quality.OUT_OF_RANGE),
        ("lamin", 49.0, Quality.OK),
    ]
    assert [r.value for r in second] == [63.1, 71.0, 50.0]
    assert (reader.lines, reader.garbage_lines) == (3, 2)


def test_a_value_the_instrument_marks_invalid_is_a_fault_and_the_rest_of_the_line_stands(
    serial_pair,
):
    # A Vaisala WXT536 whose wind sensor cannot measure sends "#" for the unit.
    profile = load_profile(builtin_profiles_dir() / "vaisala-wxt536-ascii.yaml")
    settings = SerialLineSource(
        type="serial_lines", name="wxt", port=serial_pair.agent_side, profile="vaisala-wxt536-ascii"
    )

    async def main():
        station = Meter(serial_pair.device_side)
        reader = SerialLineReader(settings, profile)
        with pytest.raises(SourceError):
            await reader.read()
        station.send(b"0R0,Dm=051D,Sm=3.1M,Sx=7.9M,Ta=29.4C,Ua=81.0P,Pa=1008.6H,Ri=12.4M\r\n")
        await asyncio.sleep(0.2)
        measured = await reader.read()
        station.send(b"0R0,Dm=000#,Sm=0.0#,Sx=0.0#,Ta=29.5C,Ua=81.2P,Pa=1008.5H,Ri=0.0M\r\n")
        await asyncio.sleep(0.2)
        unmeasured = await reader.read()
        await reader.close()
        station.close()
        return measured, unmeasured

    measured, unmeasured = asyncio.run(main())
    assert [(r.parameter, r.value, r.unit) for r in measured] == [
        ("wind_direction", 51.0, "°"),
        ("wind_speed", 3.1, "m/s"),
        ("wind_gust", 7.9, "m/s"),
        ("temperature", 29.4, "°C"),
        ("humidity", 81.0, "%"),
        ("pressure", 1008.6, "hPa"),
        ("rain_intensity", 12.4, "mm/h"),
    ]
    assert {r.quality for r in measured} == {Quality.OK}
    assert [(r.value, r.quality) for r in unmeasured[:3]] == [(None, Quality.FAULT)] * 3
    assert [r.value for r in unmeasured[3:]] == [29.5, 81.2, 1008.5, 0.0]
    assert {r.quality for r in unmeasured[3:]} == {Quality.OK}


def test_a_silent_meter_is_no_reading(serial_pair):
    async def main():
        meter = Meter(serial_pair.device_side)
        reader = reader_for(serial_pair.agent_side, max_age_s=0.3)
        with pytest.raises(SourceError):
            await reader.read()
        meter.send(b"LAeq=61.0 LAmax=70.5 LAmin=48.2\n")
        await asyncio.sleep(0.1)
        fresh = await reader.read()
        await asyncio.sleep(0.5)
        with pytest.raises(SourceError, match=r"no valid line in the last 0\.3 s"):
            await reader.read()
        await reader.close()
        meter.close()
        return fresh

    assert asyncio.run(main())[0].value == 61.0


def test_an_endless_line_of_noise_does_not_grow_without_bound(serial_pair):
    async def main():
        meter = Meter(serial_pair.device_side)
        reader = reader_for(serial_pair.agent_side)
        with pytest.raises(SourceError):
            await reader.read()
        for _ in range(10):
            meter.send(b"\x55" * 1000)
            await asyncio.sleep(0.02)
        meter.send(b"\nLAeq=55.0 LAmax=60.0 LAmin=40.0\n")
        await asyncio.sleep(0.2)
        readings = await reader.read()
        await reader.close()
        meter.close()
        return readings, reader

    readings, reader = asyncio.run(main())
    assert readings[0].value == 55.0
    assert reader.garbage_lines >= 2


def test_the_port_is_reopened_after_the_adapter_comes_back(serial_pair):
    async def main():
        meter = Meter(serial_pair.device_side)
        reader = reader_for(serial_pair.agent_side, max_age_s=0.5)
        with pytest.raises(SourceError):
            await reader.read()
        meter.send(b"LAeq=61.0 LAmax=70.5 LAmin=48.2\n")
        await asyncio.sleep(0.1)
        before = await reader.read()
        meter.close()
        serial_pair.stop()
        await asyncio.sleep(0.6)
        with pytest.raises(SourceError):
            await reader.read()
        serial_pair.start()
        meter = Meter(serial_pair.device_side)
        after = None
        for _ in range(40):
            meter.send(b"LAeq=58.0 LAmax=66.0 LAmin=45.5\n")
            await asyncio.sleep(0.25)
            try:
                after = await reader.read()
                break
            except SourceError:
                continue
        await reader.close()
        meter.close()
        return before, after

    before, after = asyncio.run(main())
    assert before[0].value == 61.0
    assert after is not None
    assert after[0].value == 58.0
