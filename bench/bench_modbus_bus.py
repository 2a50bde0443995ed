#!/usr/bin/env python3
"""Three figures for field acquisition, each against a baseline from the same run:

1. Decoded registers per second on one RTU line of 16 units, against a bare pymodbus loop
   reading the same blocks. The line is a socat pseudo-terminal pair with no baud-rate
   limit, so this measures the software's cost per request, not the wire.
2. A poll cycle of the same 16 units on a line paced at 9600 baud by a relay, against the
   theoretical time of the same frames on the wire.
3. The agent's resident memory.

Run: .venv/bin/python bench/bench_modbus_bus.py
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from edge_agent.config import RtuBus
from edge_agent.modbus.bus import ModbusBus, silent_interval_s
from edge_agent.modbus.registers import plan_reads
from edge_agent.modbus.simulator import serve_rtu
from edge_agent.modbus.source import ModbusReader
from edge_agent.profiles import builtin_profiles_dir, load_profile

UNITS = 16
ROUNDS = 20
PROFILE = load_profile(builtin_profiles_dir() / "pq-sim-air.yaml")


async def project_path(port: str) -> float:
    bus = ModbusBus(
        RtuBus(
            type="rtu",
            name="bench",
            port=port,
            baudrate=9600,
            parity="N",
            stopbits=1,
            bytesize=8,
            timeout_s=1,
        )
    )
    readers = [ModbusReader(f"u{u}", bus, u, PROFILE) for u in range(1, UNITS + 1)]
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for reader in readers:
            await reader.read()
    elapsed = time.perf_counter() - start
    bus.close()
    return elapsed


async def bare_pymodbus(port: str, gap_s: float = 0.0) -> float:
    client = AsyncModbusSerialClient(
        port, framer=FramerType.RTU, baudrate=9600, timeout=1, retries=0
    )
    await client.connect()
    blocks = plan_reads(PROFILE)
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for unit in range(1, UNITS + 1):
            for block in blocks:
                read = (
                    client.read_input_registers
                    if block.table == "input"
                    else client.read_holding_registers
                )
                await read(block.start, count=block.count, device_id=unit)
                if gap_s:
                    await asyncio.sleep(gap_s)
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


async def measure(agent_side: str, device_side: str) -> None:
    units = dict.fromkeys(range(1, UNITS + 1), PROFILE)
    server = await serve_rtu(units, device_side, PROFILE.serial)
    registers = ROUNDS * UNITS * sum(b.count for b in plan_reads(PROFILE))
    bare = await bare_pymodbus(agent_side)
    gapped = await bare_pymodbus(agent_side, silent_interval_s(9600))
    ours = await project_path(agent_side)
    await server.shutdown()
    print(f"registers read per run: {registers} ({UNITS} units x {ROUNDS} rounds, 9600 baud)")
    print(f"bare pymodbus loop:                  {registers / bare:9.0f} registers/s")
    print(f"bare loop + RTU silent interval:     {registers / gapped:9.0f} registers/s")
    print(f"agent bus + decode:                  {registers / ours:9.0f} registers/s")
    print(f"ratio to bare loop:                  {bare / ours:9.2f}")
    print(f"ratio to bare loop with the interval:{gapped / ours:9.2f}  (goal >= 0.9)")


BAUD = 9600
CHAR_S = 11 / BAUD  # start bit, 8 data bits, parity or second stop bit, stop bit


class PacedLine:
    """Relays two pseudo-terminal pairs as a 9600-baud wire: each chunk reaches the far end
    when its last character would have, and each direction carries one character at a time."""

    def __init__(self, near: str, far: str) -> None:
        self._fds = (os.open(near, os.O_RDWR | os.O_NOCTTY), os.open(far, os.O_RDWR | os.O_NOCTTY))
        self._busy_until = dict.fromkeys(self._fds, 0.0)

    def _relay(self, source: int, target: int) -> None:
        loop = asyncio.get_running_loop()
        data = os.read(source, 4096)
        done = max(loop.time(), self._busy_until[source]) + len(data) * CHAR_S
        self._busy_until[source] = done
        loop.call_at(done, os.write, target, data)

    def attach(self) -> None:
        loop = asyncio.get_running_loop()
        near, far = self._fds
        loop.add_reader(near, self._relay, near, far)
        loop.add_reader(far, self._relay, far, near)

    def detach(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in self._fds:
            loop.remove_reader(fd)
            os.close(fd)


def wire_time_s(units: int) -> float:
    """Frames on the wire for one poll of every unit, with 3.5 silent characters after each."""
    per_unit = 0.0
    for block in plan_reads(PROFILE):
        request, response = 8, 5 + 2 * block.count
        per_unit += (request + response + 2 * 3.5) * CHAR_S
    return units * per_unit


async def paced_cycle(agent_side: str, near: str, far: str, device_side: str) -> None:
    line = PacedLine(near, far)
    line.attach()
    server = await serve_rtu(
        dict.fromkeys(range(1, UNITS + 1), PROFILE), device_side, PROFILE.serial
    )
    bus = ModbusBus(
        RtuBus(
            type="rtu",
            name="bench",
            port=agent_side,
            baudrate=BAUD,
            parity="N",
            stopbits=1,
            bytesize=8,
            timeout_s=1,
        )
    )
    readers = [ModbusReader(f"u{u}", bus, u, PROFILE) for u in range(1, UNITS + 1)]
    cycles = []
    for _ in range(5):
        start = time.perf_counter()
        for reader in readers:
            await reader.read()
        cycles.append(time.perf_counter() - start)
    bus.close()
    await server.shutdown()
    line.detach()
    theory = wire_time_s(UNITS)
    best = min(cycles)
    print(f"poll cycle, {UNITS} units at {BAUD} baud:  {best * 1000:9.0f} ms (best of 5)")
    print(f"same frames on the wire, in theory:  {theory * 1000:9.0f} ms")
    print(f"ratio cycle / wire:                  {best / theory:9.2f}")


def agent_memory(workdir: Path) -> None:
    """Resident memory of a running agent with the example air-station config's shape."""
    config = workdir / "agent.yaml"
    config.write_text(
        "device: {id: air-bench, site: bench, kind: air, name: bench}\n"
        "broker: {host: 127.0.0.1, port: 9}\n"
        f"state_dir: {workdir}/state\n"
        "buses: [{name: gw, type: tcp, host: 127.0.0.1, port: 9}]\n"
        "sources: [{name: aqms, type: modbus, bus: gw, profile: pq-sim-air, interval_s: 1}]\n"
    )
    agent = subprocess.Popen(
        [str(Path(sys.executable).parent / "edge-agent"), "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(8)
    rss = psutil.Process(agent.pid).memory_info().rss / 2**20
    agent.terminate()
    agent.wait(15)
    baseline = psutil.Process(os.getpid()).memory_info().rss / 2**20
    print(f"agent resident memory:               {rss:9.1f} MiB (goal < 60)")
    print(f"this benchmark process, for scale:   {baseline:9.1f} MiB")


def pty_pair(one: str, other: str) -> subprocess.Popen[bytes]:
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={one}", f"pty,raw,echo=0,link={other}"],
        stderr=subprocess.DEVNULL,
    )
    while not (Path(one).exists() and Path(other).exists()):
        time.sleep(0.05)
    return socat


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        a, b, c, d = (f"{tmp}/{name}" for name in ("agent", "near", "far", "device"))
        pairs = [pty_pair(a, b), pty_pair(c, d)]
        try:
            asyncio.run(measure(a, b))
            asyncio.run(paced_cycle(a, b, c, d))
        finally:
            for socat in pairs:
                socat.terminate()
        agent_memory(Path(tmp))


if __name__ == "__main__":
    main()
