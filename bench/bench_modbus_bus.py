#!/usr/bin/env python3
"""Decoded registers per second on one RTU line of 16 units, against a bare pymodbus loop
reading the same blocks on the same line in the same run; and the agent's resident memory.

The line is a socat pseudo-terminal pair, so it has no baud-rate limit: the figures measure
the software's cost per request, not the wire. Run: .venv/bin/python bench/bench_modbus_bus.py
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
from edge_agent.profiles import builtin_profiles_dir, load_profile
from edge_agent.registers import plan_reads
from edge_agent.simulator import serve_rtu
from edge_agent.sources.modbus import ModbusReader
from edge_agent.sources.modbus_bus import ModbusBus, silent_interval_s

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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        agent_side, device_side = f"{tmp}/agent", f"{tmp}/device"
        socat = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={agent_side}", f"pty,raw,echo=0,link={device_side}"],
            stderr=subprocess.DEVNULL,
        )
        while not (Path(agent_side).exists() and Path(device_side).exists()):
            time.sleep(0.05)
        try:
            asyncio.run(measure(agent_side, device_side))
        finally:
            socat.terminate()
        agent_memory(Path(tmp))


if __name__ == "__main__":
    main()
