#!/usr/bin/env python3
"""Police alerts under a whole island's load, each figure against a baseline of the same run:

1. 50 cameras each publishing 2 plate reads per second through a real Mosquitto to a real
   `collector run` process holding 10,000 watchlist entries; one read in ten is a watched
   plate. Latency from the read's publication at the edge to the alert received by an MQTT
   subscriber, p50 and p99 (goal: p99 under 1 s), against the broker hop alone: the same
   reads received by a plain subscriber. The collector's CPU share over the run, from
   /proc, as a share of one core.
2. Matching one read against the 10,000 entries (exact, confusions, one character off)
   against a bare dictionary probe of the same reads.

Run: .venv/bin/python bench/bench_alerts.py
"""

import asyncio
import base64
import io
import os
import random
import statistics
import subprocess
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from collector.police.database import PoliceDb
from collector.police.matching import Matcher
from collector.police.watchlist import Watchlist
from iotwire import encode
from iotwire.messages import ClockSync, PlateAlert, PlateRead
from testbed.collector_setup import collector_config
from testbed.plate_scenes import Layout, random_plate
from testbed.processes import BIN, children, stat_fields
from testbed.servers import Mosquitto
from testbed.waiting import wait_until

CAMERAS = 50
READS_PER_S = 2
SECONDS = 30
ENTRIES = 10_000
WATCHED_SHARE = 10  # one read in ten
CROP = base64.b64encode(bytes(range(256)) * 12).decode()  # about 4 KB, as the edge sends
BROKER_TUNING = "max_inflight_messages 1000\nset_tcp_nodelay true\n"


def plates(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """Distinct (canonical, display) plates of every layout."""
    found: dict[str, str] = {}
    layouts = list(Layout)
    while len(found) < count:
        plate = random_plate(rng, rng.choice(layouts))
        found[plate.canonical] = plate.display
    return list(found.items())


def cpu_seconds(pid: int) -> float:
    """CPU time of the collector and of its commit process."""
    total = 0.0
    for process in (pid, *children(pid)):
        fields = stat_fields(process)
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def read_of(camera: int, seq: int, plate: tuple[str, str]) -> PlateRead:
    return PlateRead(
        device=f"cam-{camera:02d}",
        seq=seq,
        camera="lane-1",
        ts=datetime.now(UTC),
        clock=ClockSync.SYNCED,
        text=plate[0],
        display=plate[1],
        confidence=0.93,
        box=(400, 300, 120, 90),
        crop_jpeg_b64=CROP,
    )


async def island(broker: Mosquitto, watched: list[tuple[str, str]], others: list) -> None:
    alert_latency: list[float] = []
    hop_latency: list[float] = []
    rng = random.Random(7)

    matches: list[str] = []

    async def listen(topic: str, latencies: list[float], model: type) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(topic, qos=1)
            async for message in client.messages:
                received = model.model_validate_json(message.payload)
                latencies.append((datetime.now(UTC) - received.ts).total_seconds())
                if isinstance(received, PlateAlert):
                    matches.append(received.match)

    listeners = [
        asyncio.create_task(listen("pq/v1/alerts/plate", alert_latency, PlateAlert)),
        asyncio.create_task(listen("pq/v1/+/+/plate", hop_latency, PlateRead)),
    ]
    await asyncio.sleep(1)
    sent = alerts_expected = 0
    async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=500) as edge:
        for tick in range(SECONDS * READS_PER_S):
            began = time.monotonic()
            for camera in range(CAMERAS):
                sent += 1
                if sent % WATCHED_SHARE == 0:
                    plate = watched[alerts_expected]
                    alerts_expected += 1
                else:
                    plate = rng.choice(others)
                read = read_of(camera, tick + 1, plate)
                topic = f"pq/v1/pole-{camera:02d}/cam-{camera:02d}/plate"
                await edge.publish(topic, encode(read), qos=1)
            await asyncio.sleep(max(0.0, 1 / READS_PER_S - (time.monotonic() - began)))
    deadline = time.monotonic() + 20
    while matches.count("exact") < alerts_expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for task in listeners:
        task.cancel()
    a = statistics.quantiles(alert_latency, n=100)
    h = statistics.quantiles(hop_latency, n=100)
    print(
        f"1. {CAMERAS} cameras x {READS_PER_S} reads/s for {SECONDS} s: {sent:,} reads,"
        f" {matches.count('exact')} exact alerts for {alerts_expected} watched reads, and"
        f" {len(matches) - matches.count('exact')} near matches of other plates"
        f"\n   publication to alert: p50 {a[49] * 1000:.1f} ms, p99 {a[98] * 1000:.1f} ms,"
        f" max {max(alert_latency) * 1000:.1f} ms"
        f"\n   broker hop alone:     p50 {h[49] * 1000:.1f} ms, p99 {h[98] * 1000:.1f} ms"
        f" | p99 ratio {a[98] / h[98]:.1f}"
    )


def collector_figures(work: Path, broker: Mosquitto, entries: list[tuple[str, str]]) -> None:
    police = work / "police.sqlite"
    db = PoliceDb(police)
    csv_text = "plate,reason,priority\n" + "".join(f"{p},stolen,normal\n" for p, _ in entries)
    began = time.perf_counter()
    result = Watchlist(db).import_csv(io.StringIO(csv_text), "bench")
    db.close()
    print(
        f"   ({result.added:,} watchlist entries imported in {time.perf_counter() - began:.1f} s)"
    )
    config = collector_config(work, broker, "collector-bench", alerts={"path": str(police)})
    log = (work / "collector.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "collector"), "run", "-c", str(config)], stdout=log, stderr=log
    )
    try:
        wait_until(lambda: "subscribed to" in (work / "collector.log").read_text(), 30, "collector")
        cpu_before, wall_before = cpu_seconds(process.pid), time.monotonic()
        rng = random.Random(11)
        watched = rng.sample(entries, SECONDS * READS_PER_S * CAMERAS // WATCHED_SHARE)
        watched_set = {p for p, _ in entries}
        others = [p for p in plates(random.Random(5), 3000) if p[0] not in watched_set]
        asyncio.run(island(broker, watched, others))
        cpu = cpu_seconds(process.pid) - cpu_before
        wall = time.monotonic() - wall_before
        print(
            f"   collector CPU (both processes): {cpu:.1f} s over {wall:.1f} s,"
            f" {100 * cpu / wall:.1f} % of one core ({os.cpu_count()} cores here)"
        )
    finally:
        process.terminate()
        process.wait(20)


def matching_figures(entries: list[tuple[str, str]]) -> None:
    db_entries = []
    with tempfile.TemporaryDirectory() as tmp:
        db = PoliceDb(Path(tmp) / "p.sqlite")
        watchlist = Watchlist(db)
        with db.transaction() as tx:
            tx.executemany(
                "INSERT INTO watchlist VALUES (?, ?, 'x', 'normal', NULL, 'bench', ?)",
                [(p, d, datetime.now(UTC).isoformat()) for p, d in entries],
            )
        db_entries = watchlist.entries()
        db.close()
    began = time.perf_counter()
    matcher = Matcher(db_entries)
    built = time.perf_counter() - began
    reads = [p for p, _ in plates(random.Random(3), 2000)]
    now = datetime.now(UTC)
    exact = {e.plate: e for e in db_entries}
    n = 20
    ours = timeit.timeit(lambda: [matcher.match(r, now) for r in reads], number=n) / (
        n * len(reads)
    )
    bare = timeit.timeit(lambda: [exact.get(r) for r in reads], number=n) / (n * len(reads))
    print(
        f"\n2. matching one read against {len(db_entries):,} entries: {ours * 1e6:.1f} µs"
        f" | bare dictionary probe {bare * 1e6:.2f} µs | ratio {ours / bare:.0f}"
        f"\n   (index built in {built * 1000:.0f} ms, redone only when the watchlist changes)"
    )


def main() -> None:
    entries = plates(random.Random(2026), ENTRIES)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work, BROKER_TUNING)
        broker.start()
        try:
            collector_figures(work, broker, entries)
        finally:
            broker.stop()
    matching_figures(entries)


if __name__ == "__main__":
    main()
