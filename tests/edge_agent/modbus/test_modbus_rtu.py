"""Modbus RTU over real pyserial on socat pseudo-terminals, with the faults a bus has."""

import asyncio
import contextlib
import os
import random
import time

import pytest

from edge_agent.config import RtuBus
from edge_agent.modbus.bus import ModbusBus, silent_interval_s
from edge_agent.modbus.simulator import serve_rtu
from edge_agent.modbus.source import ModbusReader
from edge_agent.poller import poll
from edge_agent.profiles import Point, builtin_profiles_dir, load_profile
from edge_agent.sources.base import SourceError, SourceStats
from iotwire.messages import Quality
from testbed.processes import run_cli


def profile(name: str):
    return load_profile(builtin_profiles_dir() / f"{name}.yaml")


UNITS = {1: profile("pq-sim-air"), 2: profile("pq-sim-noise"), 3: profile("pq-sim-water")}


def rtu_bus(port: str, timeout_s: float = 0.3) -> ModbusBus:
    return ModbusBus(
        RtuBus(
            type="rtu",
            name="rs485-1",
            port=port,
            baudrate=9600,
            parity="N",
            stopbits=1,
            bytesize=8,
            timeout_s=timeout_s,
        )
    )


async def serve_line(port: str):
    return await serve_rtu(UNITS, port, profile("pq-sim-air").serial)


def test_silent_interval_follows_the_baud_rate():
    assert silent_interval_s(9600) == pytest.approx(0.00401, abs=1e-5)
    assert silent_interval_s(115200) == 1.75e-3


def test_three_units_share_one_line_and_all_answer(serial_pair):
    async def main():
        server = await serve_line(serial_pair.device_side)
        bus = rtu_bus(serial_pair.agent_side)
        readers = [ModbusReader(f"u{u}", bus, u, p) for u, p in UNITS.items()]
        try:
            for _ in range(3):  # concurrent readers: the bus lock keeps frames apart
                results = await asyncio.gather(*(r.read() for r in readers))
            return results, bus.stats
        finally:
            bus.close()
            await server.shutdown()

    results, stats = asyncio.run(main())
    assert [len(r) for r in results] == [8, 3, 6]
    assert all(r.quality is Quality.OK for readings in results for r in readings)
    assert (stats.timeouts, stats.link_errors, stats.reopens) == (0, 0, 1)


def test_a_silent_unit_costs_the_others_nothing(serial_pair):
    """Unit 9 is configured but absent: its reads time out, the others keep their ticks."""
    interval = 1.0

    async def main():
        server = await serve_line(serial_pair.device_side)
        bus = rtu_bus(serial_pair.agent_side, timeout_s=0.3)
        sources = {
            "air": ModbusReader("air", bus, 1, UNITS[1]),
            "ghost": ModbusReader("ghost", bus, 9, UNITS[2]),
            "water": ModbusReader("water", bus, 3, UNITS[3]),
        }
        samples: dict[str, list] = {name: [] for name in sources}
        stats = {name: SourceStats() for name in sources}
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(poll(src, interval, stats[name], samples[name].append, stop))
            for name, src in sources.items()
        ]
        await asyncio.sleep(4.5)
        stop.set()
        for task in tasks:
            task.cancel()
        bus.close()
        await server.shutdown()
        return samples, stats

    samples, stats = asyncio.run(main())
    for good in ("air", "water"):
        assert len(samples[good]) >= 4
        assert all(r.quality is Quality.OK for s in samples[good] for r in s.readings)
        assert stats[good].errors == 0
        assert stats[good].overruns == 0
    assert stats["ghost"].errors == len(samples["ghost"]) >= 4
    assert all(
        r.quality is Quality.FAULT and r.value is None for s in samples["ghost"] for r in s.readings
    )
    assert "bus rs485-1 unit 9: input registers 0-2: no valid answer" in stats["ghost"].last_error


def test_exception_responses_name_bus_unit_and_register(serial_pair):
    async def main():
        server = await serve_line(serial_pair.device_side)
        bus = rtu_bus(serial_pair.agent_side)
        extra = Point(parameter="leq_1h", unit="dBA", table="holding", address=300, type="uint16")
        wrong = UNITS[2].model_copy(update={"points": (*UNITS[2].points, extra)})
        try:
            with pytest.raises(SourceError) as caught:
                await ModbusReader("slm", bus, 2, wrong).read()
            good = await ModbusReader("air", bus, 1, UNITS[1]).read()
            return str(caught.value), good, bus.stats
        finally:
            bus.close()
            await server.shutdown()

    message, good, stats = asyncio.run(main())
    assert (
        message
        == "bus rs485-1 unit 2: holding registers 300-300: exception 2 (illegal data address)"
    )
    assert len(good) == 8
    assert stats.exceptions == 1


class CorruptingLink:
    """Relays bytes between two serial pairs and, while `noisy`, flips bits and adds garbage,
    as a long RS-485 run next to a pump motor does."""

    def __init__(self, a: str, b: str, seed: int = 7) -> None:
        self._fds = [os.open(a, os.O_RDWR | os.O_NOCTTY), os.open(b, os.O_RDWR | os.O_NOCTTY)]
        self._rng = random.Random(seed)
        self.noisy = False
        self.corrupted = 0

    def _relay(self, source: int, target: int) -> None:
        data = bytearray(os.read(source, 512))
        if self.noisy and data:
            for _ in range(self._rng.randint(1, 3)):
                index = self._rng.randrange(len(data))
                data[index] ^= 1 << self._rng.randrange(8)
            data += self._rng.randbytes(self._rng.randint(0, 6))
            self.corrupted += 1
        os.write(target, bytes(data))

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        first, second = self._fds
        loop.add_reader(first, self._relay, first, second)
        loop.add_reader(second, self._relay, second, first)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        for fd in self._fds:
            loop.remove_reader(fd)
            os.close(fd)


def test_garbage_on_the_line_is_survived(serial_pair, tmp_path):
    from tests.conftest import SerialPair

    second = SerialPair(tmp_path / "far-end")
    (tmp_path / "far-end").mkdir()
    second.start()

    async def main():
        loop = asyncio.get_running_loop()
        link = CorruptingLink(serial_pair.device_side, second.agent_side)
        link.attach(loop)
        server = await serve_line(second.device_side)
        bus = rtu_bus(serial_pair.agent_side, timeout_s=0.3)
        reader = ModbusReader("air", bus, 1, UNITS[1])
        outcomes = []
        try:
            for noisy in (False, True, True, True, True, True, False, False, False):
                link.noisy = noisy
                try:
                    outcomes.append((noisy, await reader.read()))
                except SourceError as exc:
                    outcomes.append((noisy, str(exc)))
                await asyncio.sleep(0.35)  # let a corrupted exchange drain before the next
            return outcomes, link.corrupted, bus.stats
        finally:
            bus.close()
            await server.shutdown()
            link.detach(loop)

    try:
        outcomes, corrupted, stats = asyncio.run(main())
    finally:
        second.stop()
    print("corrupted exchanges", corrupted, "bus", stats)
    assert corrupted >= 5
    noisy_failures = [o for noisy, o in outcomes if noisy and isinstance(o, str)]
    assert noisy_failures, "corruption never reached the reader"
    assert all("bus rs485-1 unit 1" in f for f in noisy_failures)
    clean_after = [o for noisy, o in outcomes[-2:]]
    assert all(isinstance(o, tuple) and len(o) == 8 for o in clean_after), outcomes[-3:]


def test_an_unplugged_adapter_is_reopened_without_restarting(serial_pair):
    async def main():
        server = await serve_line(serial_pair.device_side)
        bus = rtu_bus(serial_pair.agent_side)
        reader = ModbusReader("air", bus, 1, UNITS[1])
        before = await reader.read()

        await server.shutdown()
        serial_pair.stop()  # the USB adapter is pulled out
        errors = []
        for _ in range(4):
            with contextlib.suppress(SourceError):
                await reader.read()
                raise AssertionError("read succeeded with the adapter unplugged")
            errors.append(bus.stats.link_errors + bus.stats.timeouts)
            await asyncio.sleep(0.3)

        serial_pair.start()  # and plugged back in
        server = await serve_line(serial_pair.device_side)
        deadline = time.monotonic() + 20
        after = None
        while after is None and time.monotonic() < deadline:
            try:
                after = await reader.read()
            except SourceError:
                await asyncio.sleep(0.5)
        bus.close()
        await server.shutdown()
        return before, after, bus.stats

    before, after, stats = asyncio.run(main())
    print("bus after replug", stats)
    assert len(before) == 8
    assert after is not None
    assert len(after) == 8
    assert stats.reopens >= 2


def test_probe_finds_the_units_on_a_line(serial_pair, processes):
    processes.start(
        "sim-line",
        "edge-agent",
        "simulate",
        "2:pq-sim-air",
        "5:pq-sim-noise",
        "--serial",
        serial_pair.device_side,
    )
    time.sleep(1.5)
    result = run_cli(
        "edge-agent",
        "probe",
        "--serial",
        serial_pair.agent_side,
        "--units",
        "1-6",
        "--baudrate",
        "9600",
        "--timeout-s",
        "0.15",
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 unit(s) answered" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "│ 9600 N" in line]
    assert [row.split("│")[2].strip() for row in rows] == ["2", "5"]
    hint = f"--sensor PROFILE:2 --sensor PROFILE:5 --serial {serial_pair.agent_side}"
    assert f"{hint} --baudrate 9600 --parity N" in result.stdout


def test_probe_says_so_when_nothing_answers(serial_pair):
    result = run_cli(
        "edge-agent",
        "probe",
        "--serial",
        serial_pair.agent_side,
        "--units",
        "1-3",
        "--timeout-s",
        "0.1",
    )
    assert result.returncode == 1
    assert "0 unit(s) answered" in result.stdout
