"""Line-streaming instruments over real pyserial on socat pseudo-terminals."""

import asyncio
import os

import pytest

from edge_agent.config import SerialLineSource
from edge_agent.profiles import LineProfile, builtin_profiles_dir, load_profile, vaisala_crc
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


WXT_LINE = b"0R0,Dm=051D,Sm=3.1M,Sx=7.9M,Ta=29.4C,Ua=81.0P,Pa=1008.6H,Ri=12.4M"


def test_the_vaisala_crc_is_the_one_its_user_guide_prints():
    # WXT530 series user guide M211840EN, automatic mode and polling with CRC.
    for line, crc in [
        (b"0r1,Sn=0.1M,Sm=0.1M,Sx=0.1M", b"GOG"),
        (b"0r2,Ta=22.7C,Ua=55.5P,Pa=1004.7H", b"@Fn"),
        (b"0r3,Rc=0.00M,Rd=0s,Ri=0.0M", b"Ilm"),
        (b"0r5,Th=25.0C,Vh=10.6#,Vs=10.8V,Vr=3.369V", b"O]T"),
        (b"0r0", b"Kld"),
    ]:
        assert vaisala_crc(line) == crc


def wxt_with_crc() -> LineProfile:
    """The WXT536 profile for a transmitter set to ASCII automatic with CRC (aXU,M=a):
    data messages say `r0` and end with the three CRC characters."""
    profile = load_profile(builtin_profiles_dir() / "vaisala-wxt536-ascii-crc.yaml")
    assert isinstance(profile, LineProfile)
    return profile


def read_after(serial_pair, profile: LineProfile, sent: list[bytes]):
    """What the reader makes of `sent`, each line written by the station in turn: the
    readings, or the fault, and the lines it counted as garbage."""
    settings = SerialLineSource(
        type="serial_lines", name="wxt", port=serial_pair.agent_side, profile="wxt"
    )

    async def main():
        station = Meter(serial_pair.device_side)
        reader = SerialLineReader(settings, profile)
        with pytest.raises(SourceError):
            await reader.read()  # opens the port
        for line in sent:
            station.send(line)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        try:
            outcome = await reader.read()
        except SourceError as exc:
            outcome = exc
        await reader.close()
        station.close()
        return outcome, reader.garbage_lines

    return asyncio.run(main())


def test_a_truncated_wxt_line_is_a_fault_and_a_whole_one_is_read(serial_pair):
    profile = load_profile(builtin_profiles_dir() / "vaisala-wxt536-ascii.yaml")
    truncated = [
        WXT_LINE[:52] + b"\r\n",  # cut inside the pressure, the line ended anyway
        WXT_LINE[:19] + b"\r\n",  # cut after the wind speed: fields missing
        WXT_LINE[20:] + b"\r\n",  # the port opened in the middle of a line
        WXT_LINE[:-1] + b"\r\n",  # the last unit letter lost
    ]
    fault, garbage = read_after(serial_pair, profile, truncated)
    assert isinstance(fault, SourceError)
    assert "no valid line" in str(fault)
    assert garbage == len(truncated)


def test_a_wxt_line_that_fails_its_crc_is_a_fault_and_one_that_passes_is_read(
    serial_pair,
):
    profile = wxt_with_crc()
    line = WXT_LINE.replace(b"R0,", b"r0,")
    crc = vaisala_crc(line)
    # Bytes lost inside numbers leave a line the pattern takes: only the CRC tells.
    damaged = [
        line.replace(b"Pa=1008.6H", b"Pa=108.6H") + crc + b"\r\n",
        line.replace(b"Ta=29.4C", b"Ta=2.4C") + crc + b"\r\n",
        line + crc[:2] + b"\r\n",
        line + b"\r\n",
    ]
    fault, garbage = read_after(serial_pair, profile, damaged)
    assert isinstance(fault, SourceError)
    assert garbage == len(damaged)
    readings, garbage = read_after(serial_pair, profile, [*damaged, line + crc + b"\r\n"])
    assert [r.value for r in readings] == [51.0, 3.1, 7.9, 29.4, 81.0, 1008.6, 12.4]
    assert {r.quality for r in readings} == {Quality.OK}
    assert garbage == len(damaged)
