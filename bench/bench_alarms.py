#!/usr/bin/env python3
"""Alarm evaluation under an island's load, each figure against a baseline of the same run.

150 wastewater boxes, 10 series each (1,500 series), a sample of every series every 30 s
(5 messages, 50 readings a second; `--interval-s` for another rate), published through a
real Mosquitto to a real `collector run` with an SQLite store. Every series has a limit
in force (QCVN 14:2008 column B, judged on its running hourly mean), and the store holds
the hour before, so every hourly mean is valid from the start, as on a collector that has
run a while; measuring starts after the first tick, which reads that hour back (its time
is printed too). Series sit just under their limit; during the run, about one reading in
ten is a spike that takes its series' hourly mean over the limit and must raise an alarm.

1. The collector's CPU over the same load, run once with alarms and once without (the
   baseline: ingest alone), as a share of one core, and the evaluation's own time from
   the collector's metrics (`collector_alarm_evaluation_seconds`).
2. The time from a spike's publication to its alarm received on the alarms topic, p50
   and p99 (goal: p99 under 5 s). It bounds the time from the sample's commit to the
   alarm raised from above; the baseline is the broker hop alone, the same telemetry
   received by a plain subscriber.

Run: .venv/bin/python bench/bench_alarms.py [--interval-s 30]
"""

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt

from collector.stores.base import ReceivedMessage
from collector.stores.sqlite import SqliteStore
from iotwire import encode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from testbed.collector_setup import collector_config
from testbed.processes import BIN, children, stat_fields
from testbed.servers import Mosquitto
from testbed.waiting import free_port, wait_until

BOXES = 150
INTERVAL_S = 30  # the default; water analysers sample every minute or few
SECONDS = 120
SPIKE_SHARE = 10  # one sample in ten crosses its series' limit
EPOCH = "00000000000000be"
# Column B limits (mg/L but coliforms) of QCVN 14:2008, judged on hourly means.
LIMITS = {
    "bod5": 50.0,
    "tss": 100.0,
    "nh4": 10.0,
    "tds": 1000.0,
    "sulfide": 4.0,
    "nitrate": 50.0,
    "animal_vegetable_oil": 20.0,
    "surfactants": 10.0,
    "po4": 10.0,
    "total_coliforms": 5000.0,
}
UNIT = {"total_coliforms": "MPN/100 mL"}
NORMAL = 0.99  # of the limit: a mean just inside it
SPIKE = 5.0  # of the limit: enough for one sample to take an hour of 120 over it
BROKER_TUNING = "max_inflight_messages 1000\nset_tcp_nodelay true\n"


def box(i: int) -> str:
    return f"ww-{i:03d}"


def telemetry(device: str, seq: int, ts: datetime, spiked: set[str]) -> Telemetry:
    readings = tuple(
        Reading(
            parameter=p,
            value=limit * (SPIKE if p in spiked else NORMAL),
            unit=UNIT.get(p, "mg/L"),
        )
        for p, limit in LIMITS.items()
    )
    sample = Sample(sensor="outlet", ts=ts, readings=readings)
    return Telemetry(device=device, seq=seq, epoch=EPOCH, clock=ClockSync.SYNCED, samples=(sample,))


def fill_last_hour(path: Path, now: datetime, interval_s: int) -> int:
    """The hour before `now` in the store, as ingest would have written it; returns the
    last sequence number of each box (the same for all)."""
    store = SqliteStore(path)
    steps = 3600 // interval_s
    batch = []
    for step in range(steps):
        ts = now - timedelta(seconds=interval_s * (steps - step))
        for i in range(BOXES):
            batch.append(ReceivedMessage("island", telemetry(box(i), step + 1, ts, set()), ts))
        if len(batch) >= 3000:
            store.write_batch(batch)
            batch = []
    store.write_batch(batch)
    store.close()
    return steps


def cpu_seconds(pid: int) -> float:
    """CPU time of the collector and of its commit process."""
    total = 0.0
    for process in (pid, *children(pid)):
        fields = stat_fields(process)
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def evaluation_seconds(port: int) -> tuple[float, int]:
    """The evaluation's summed tick time and tick count, from the metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    total = re.search(r"^collector_alarm_evaluation_seconds_sum (\S+)$", text, re.M)
    count = re.search(r"^collector_alarm_evaluation_seconds_count (\S+)$", text, re.M)
    if total is None or count is None:
        raise RuntimeError(f"no evaluation figures in the metrics on port {port}")
    return float(total.group(1)), int(float(count.group(1)))


class Load:
    """What one run published and saw: spikes by alarm subject, and latencies."""

    def __init__(self) -> None:
        self.spiked: dict[str, float] = {}  # subject -> when its spike was published
        self.alarm_latency: list[float] = []
        self.hop_latency: list[float] = []
        self.sent = 0


async def publish_load(broker: Mosquitto, first_seq: int, interval_s: int, alarms: bool) -> Load:
    load = Load()
    rng = random.Random(7)
    published: dict[tuple[str, int], float] = {}

    async def listen_alarms() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe("pq/v1/alarms/#", qos=1)
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                event = json.loads(message.payload)
                sent = load.spiked.get(event["subject"])
                if event["event"] == "raised" and sent is not None:
                    load.alarm_latency.append(time.time() - sent)

    async def listen_hop() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe("pq/v1/+/+/telemetry", qos=1)
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                body = json.loads(message.payload)
                sent = published.get((body["device"], body["seq"]))
                if sent is not None:
                    load.hop_latency.append(time.time() - sent)

    listeners = [asyncio.create_task(listen_hop())]
    if alarms:
        listeners.append(asyncio.create_task(listen_alarms()))
    await asyncio.sleep(1)
    untouched = {box(i): list(LIMITS) for i in range(BOXES)}
    for names in untouched.values():
        rng.shuffle(names)
    began = time.monotonic()
    async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=500) as edge:
        for step in range(SECONDS // interval_s):
            for i in range(BOXES):  # the boxes' samples spread over the interval
                due = began + step * interval_s + i * interval_s / BOXES
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                device = box(i)
                spiked = {
                    untouched[device].pop()
                    for _ in range(len(LIMITS))
                    if untouched[device] and rng.randrange(SPIKE_SHARE) == 0
                }
                seq = first_seq + step + 1
                now = time.time()
                message = telemetry(device, seq, datetime.fromtimestamp(now, UTC), spiked)
                published[(device, seq)] = now
                for parameter in spiked:
                    load.spiked[f"{device}/outlet/{parameter}/1h"] = now
                await edge.publish(f"pq/v1/island/{device}/telemetry", encode(message), qos=1)
                load.sent += 1
    deadline = time.monotonic() + 20
    while alarms and len(load.alarm_latency) < len(load.spiked) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    for task in listeners:
        task.cancel()
    return load


@dataclass(frozen=True)
class Run:
    """One run's collector CPU and wall seconds over the load, what the load saw, and
    the evaluation's time and ticks over it, and its first tick's time (the read-back)."""

    cpu: float
    wall: float
    load: Load
    evaluating: float
    ticks: int
    first_tick: float


def run(work: Path, broker: Mosquitto, interval_s: int, alarms: bool) -> Run:
    """One run of the load on a fresh collector, with alarms or without."""
    now = datetime.now(UTC)
    first_seq = fill_last_hour(work / "store.sqlite", now, interval_s)
    metrics_port = free_port()
    stations = {box(i): {"kind": "wastewater", "column": "B"} for i in range(BOXES)}
    sections: dict[str, object] = {
        "stations": stations,
        "metrics": {"port": metrics_port},
    }
    if alarms:
        sections["alarms"] = {
            "path": str(work / "alarms.sqlite"),
            "rules": [{"name": "effluent", "type": "limit", "kinds": ["wastewater"]}],
        }
    client_id = "collector-bench-alarms" if alarms else "collector-bench-ingest"
    config = collector_config(work, broker, client_id, **sections)
    log = (work / "collector.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "collector"), "run", "-c", str(config)], stdout=log, stderr=log
    )
    try:
        try:
            wait_until(lambda: "subscribed to" in (work / "collector.log").read_text(), 60, "")
        except TimeoutError:
            raise RuntimeError((work / "collector.log").read_text()[-2000:]) from None
        time.sleep(5)  # past the start's rollup of the hour stored
        first = 0.0
        if alarms:  # past the first tick, which reads the hour back
            wait_until(lambda: evaluation_seconds(metrics_port)[1] >= 1, 120, "the first tick")
            first = evaluation_seconds(metrics_port)[0]
            wait_until(lambda: evaluation_seconds(metrics_port)[1] >= 2, 30, "the next tick")
        before = evaluation_seconds(metrics_port) if alarms else (0.0, 0)
        cpu_before, wall_before = cpu_seconds(process.pid), time.monotonic()
        load = asyncio.run(publish_load(broker, first_seq, interval_s, alarms))
        cpu = cpu_seconds(process.pid) - cpu_before
        wall = time.monotonic() - wall_before
        after = evaluation_seconds(metrics_port) if alarms else (0.0, 0)
    finally:
        process.terminate()
        process.wait(20)
    return Run(cpu, wall, load, after[0] - before[0], after[1] - before[1], first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval-s", type=int, default=INTERVAL_S, help="sampling interval")
    interval_s = parser.parse_args().interval_s
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root, BROKER_TUNING)
        broker.start()
        try:
            (root / "without").mkdir()
            (root / "with").mkdir()
            base = run(root / "without", broker, interval_s, alarms=False)
            ours = run(root / "with", broker, interval_s, alarms=True)
        finally:
            broker.stop()
    load = ours.load
    print(
        f"{BOXES} boxes, {BOXES * len(LIMITS):,} series, a sample every {interval_s} s:"
        f" {load.sent:,} messages ({load.sent * len(LIMITS) / ours.wall:.0f} readings/s)"
        f" over {ours.wall:.0f} s, the hour before already stored; {os.cpu_count()} cores here"
    )
    base_share, share = base.cpu / base.wall, ours.cpu / ours.wall
    print(
        f"\n1. collector CPU with alarms: {100 * share:.1f} % of one core"
        f" | ingest alone (baseline): {100 * base_share:.1f} %"
        f" | ratio {share / base_share:.2f}"
        f"\n   the evaluation's part: {100 * (share - base_share):.1f} % of one core by"
        f" difference; its ticks took {ours.evaluating:.2f} s of {ours.wall:.0f} s"
        f" ({100 * ours.evaluating / ours.wall:.1f} %, {ours.ticks} ticks,"
        f" {1000 * ours.evaluating / max(ours.ticks, 1):.0f} ms each, store reads included)"
        f"\n   the first tick after the start, reading the stored hour back:"
        f" {ours.first_tick:.1f} s"
    )
    a = statistics.quantiles(load.alarm_latency, n=100)
    h = statistics.quantiles(load.hop_latency, n=100)
    print(
        f"\n2. {len(load.alarm_latency)} alarms received for {len(load.spiked)} spikes"
        f"\n   spike published to alarm received: p50 {a[49]:.2f} s, p99 {a[98]:.2f} s,"
        f" max {max(load.alarm_latency):.2f} s (goal p99 < 5 s)"
        f"\n   broker hop alone: p50 {h[49] * 1000:.1f} ms, p99 {h[98] * 1000:.1f} ms"
        f" | p99 ratio {a[98] / h[98]:.0f}"
    )


if __name__ == "__main__":
    main()
