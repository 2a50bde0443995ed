#!/usr/bin/env python3
"""Three figures for delivery, each against a baseline from the same run:

1. Collector ingest from a real Mosquitto into SQLite and into InfluxDB, messages/s and
   samples/s, against the broker's own `mosquitto_sub` piped into a bulk writer to the same
   store (no acknowledgement after commit, no spool, no counters). Goal: ratio >= 0.7.
   The collector as `collector run` runs it, validating and committing in a process of
   its own, and with everything in one process; and the time spent committing. Over
   MQTT 3.1.1, the collector's default, and over MQTT 5.
2. Outbox drain rate after a backlog of 100,000 messages, against `mosquitto_pub -l`
   publishing the same payloads at QoS 1, the median of three runs of each; how long the store
   then takes to hold all of it (the collector spools the flood and drains it after); one
   drain to a collector without a spool, which confirms only what it committed;
   and the collector's CPU time per message, which the rest of the machine's load moves
   far less than either rate.
3. Latency from sample time to committed in the store (through the commit process, as
   `collector run` commits), p50 and p99, with 200 devices publishing every second,
   against the bare broker round trip in the same run.

Starts its own Mosquitto and InfluxDB on temporary directories.
Run: .venv/bin/python bench/bench_delivery.py [ingest] [drain] [latency]
"""

import asyncio
import logging
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import yaml

from collector.arrivals import Arrival
from collector.config import IngestSettings, load_collector
from collector.ingest.commit_process import CommitProcess
from collector.ingest.committer import CommitResult, Committer, Committing
from collector.ingest.session import Ingest
from collector.stores import open_store
from collector.stores.base import ReceivedMessage, Store
from edge_agent.config import DeviceSettings
from edge_agent.outbox import Outbox
from edge_agent.uplink import Uplink
from iotruntime.connection import BrokerSettings
from iotwire.codec import decode, encode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel, topic_for
from testbed.servers import Influxd, Mosquitto

PARAMETERS = ("pm10", "pm2_5", "no2", "so2", "co", "o3")
DEVICES = 50
MESSAGES = 20_000
BATCH = 500
# The ops-center broker as the README recommends: a subscriber may hold many
# unacknowledged messages (the collector acknowledges after commit, a batch at a time, and
# the default of 20 in flight would cap every batch at 20), and Nagle's algorithm is off
# (with it, each window of QoS 1 acknowledgements waits out the 40 ms delayed ACK).
BROKER_TUNING = "max_inflight_messages 1000\nmax_queued_messages 0\nset_tcp_nodelay true\n"


def telemetry(device: str, seq: int, ts: datetime) -> Telemetry:
    readings = tuple(
        Reading(parameter=p, value=float(seq % 97) + i, unit="µg/m³")
        for i, p in enumerate(PARAMETERS)
    )
    return Telemetry(
        device=device,
        seq=seq,
        clock=ClockSync.SYNCED,
        samples=(Sample(sensor="aqms", ts=ts, readings=readings),),
    )


def stream(count: int) -> list[tuple[str, bytes]]:
    start = datetime.now(UTC) - timedelta(hours=2)
    return [
        (
            topic_for("pq", "bench", f"air-{i % DEVICES:03d}", Channel.TELEMETRY),
            encode(
                telemetry(f"air-{i % DEVICES:03d}", i // DEVICES + 1, start + timedelta(seconds=i))
            ),
        )
        for i in range(count)
    ]


async def publish_all(broker: BrokerSettings, items: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=1000) as client:
        for start in range(0, len(items), 1000):
            await asyncio.gather(
                *(client.publish(t, p, qos=1) for t, p in items[start : start + 1000])
            )


def subscriber(broker: BrokerSettings, client_id: str, *options: str) -> list[str]:
    """`mosquitto_sub` on a persistent session subscribed to telemetry at QoS 1."""
    return [
        "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-c", "-i", client_id,
        "-q", "1", "-t", "pq/v1/+/+/telemetry", *options,
    ]  # fmt: skip


def make_session(broker: BrokerSettings, client_id: str) -> None:
    """Open the session once, so messages queue for it from now on."""
    subprocess.run(subscriber(broker, client_id, "-W", "1"), capture_output=True, check=False)


def collector_run(
    broker: BrokerSettings, committer: Committing, client_id: str
) -> tuple[float, float]:
    """Seconds for the collector to store every queued message, and of those in the store."""

    async def main() -> tuple[float, float]:
        settings = IngestSettings(client_id=client_id, batch_messages=BATCH)
        ingest = Ingest(broker, settings, committer)
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(ingest.run(stop))
        while ingest.stats.stored_messages < MESSAGES:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        stop.set()
        await task
        return elapsed, ingest.stats.store_seconds

    return asyncio.run(main())


def collector_config(
    workdir: Path, broker: BrokerSettings, store: dict[str, str], spool: Path | None = None
) -> Path:
    """What `collector run` reads: the commit process opens its store from it."""
    path = workdir / f"collector-{uuid.uuid4().hex[:6]}.yaml"
    config: dict[str, object] = {
        "broker": {"host": broker.host, "port": broker.port, "protocol": broker.protocol},
        "store": store,
        "retention": {"raw_days": 30},
    }
    if spool is not None:
        config["ingest"] = {"spool_path": str(spool)}
    path.write_text(yaml.safe_dump(config))
    return path


def baseline_run(broker: BrokerSettings, store: Store, client_id: str) -> float:
    """`mosquitto_sub` into a bulk writer: decode, batch, write; nothing else."""
    began = time.perf_counter()
    sub = subprocess.Popen(
        subscriber(broker, client_id, "-v", "-C", str(MESSAGES)), stdout=subprocess.PIPE
    )
    assert sub.stdout is not None
    batch: list[ReceivedMessage] = []
    now = datetime.now(UTC)
    for line in sub.stdout:
        _, payload = line.rstrip(b"\n").split(b" ", 1)
        batch.append(ReceivedMessage("bench", decode(payload, Telemetry), now))
        if len(batch) == BATCH:
            store.write_batch(batch)
            batch = []
    if batch:
        store.write_batch(batch)
    sub.wait()
    return time.perf_counter() - began


def ingest_figures(
    broker: BrokerSettings, workdir: Path, stores: dict[str, Callable[[], dict[str, str]]]
) -> None:
    items = stream(MESSAGES)
    samples = MESSAGES * len(PARAMETERS)
    print(
        f"1. ingest of {MESSAGES:,} queued messages ({samples:,} samples), batches <= {BATCH},"
        f" MQTT {broker.protocol}:"
    )
    for name, store_section in stores.items():
        ids = {run: f"{run}-{uuid.uuid4().hex[:6]}" for run in ("proc", "one", "base")}
        for client_id in ids.values():
            make_session(broker, client_id)
        asyncio.run(publish_all(broker, items))
        configs = {run: collector_config(workdir, broker, store_section()) for run in ids}
        process = CommitProcess(configs["proc"])
        try:
            proc_s, proc_store_s = collector_run(broker, process, ids["proc"])
        finally:
            process.close()
        store = open_store(load_collector(configs["one"]))
        one_s, one_store_s = collector_run(
            broker, Committer(store, broker.topic_prefix), ids["one"]
        )
        store.close()
        store = open_store(load_collector(configs["base"]))
        base_s = baseline_run(broker, store, ids["base"])
        store.close()
        base_rate = MESSAGES / base_s
        print(f"   {name:8} mosquitto_sub + bulk writer {base_rate:8,.0f} msg/s")
        for label, elapsed, in_store in (
            ("collector, commit process", proc_s, proc_store_s),
            ("collector, one process", one_s, one_store_s),
        ):
            rate = MESSAGES / elapsed
            print(
                f"            {label:26} {rate:8,.0f} msg/s {rate * len(PARAMETERS):9,.0f}"
                f" samples/s | ratio {rate / base_rate:.2f} (goal >= 0.7) | {in_store:.2f} s of"
                f" {elapsed:.2f} s committing"
            )


@dataclass(frozen=True)
class DrainRun:
    """One drain: seconds until every message was confirmed, until the broker had
    acknowledged the last, and until the store held all; messages sent twice; the
    collector's CPU seconds."""

    confirmed_s: float
    published_s: float
    stored_s: float
    repeats: int
    collector_cpu_s: float


DRAINED = 100_000
RUNS = 3  # drains and baseline runs alike: one run of either varies by a third here


def drain_figures(broker: BrokerSettings, workdir: Path) -> None:
    """A box's outbox after an outage drains to a running `collector run`, each message
    deleted only when the collector confirms it committed (end-to-end acknowledgement),
    against `mosquitto_pub -l` publishing the same payloads at QoS 1 with nobody
    confirming anything; the median of three runs of each."""
    runs = [drain_once(broker, workdir / f"drain-{i}") for i in range(RUNS)]
    unspooled = drain_once(broker, workdir / "drain-unspooled", spool=False)
    device = DeviceSettings(id="air-drain-base", site="bench", kind="air", name="base")
    start = datetime.now(UTC) - timedelta(hours=30)
    lines = b"".join(  # the same messages as the drained ones, epoch and all
        encode(
            telemetry(device.id, seq, start + timedelta(seconds=seq)).model_copy(
                update={"epoch": "0" * 16}
            )
        )
        + b"\n"
        for seq in range(1, DRAINED + 1)
    )
    publish = [
        "mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1",
        "-t", "pq/v1/bench/air-drain-base/telemetry", "-l",
    ]  # fmt: skip
    bases = []
    for _ in range(RUNS):
        began = time.perf_counter()
        subprocess.run(publish, input=lines, check=True)
        bases.append(time.perf_counter() - began)
    base = statistics.median(bases)
    confirmed = statistics.median(r.confirmed_s for r in runs)
    published = statistics.median(r.published_s for r in runs)
    stored = statistics.median(r.stored_s for r in runs)
    cpu = statistics.median(r.collector_cpu_s for r in runs)
    each = ", ".join(f"{DRAINED / r.confirmed_s:,.0f}" for r in runs)
    print(
        f"\n2. outbox drain of {DRAINED:,} messages, each deleted on the collector's"
        f" confirmation (median of {RUNS}): {DRAINED / confirmed:8,.0f} msg/s"
        f" | mosquitto_pub -l {DRAINED / base:8,.0f} msg/s | ratio {base / confirmed:.2f}"
        " (goal >= 0.3)"
        f"\n   runs: {each} msg/s; mosquitto_pub -l "
        + ", ".join(f"{DRAINED / b:,.0f}" for b in bases)
        + " msg/s"
        f"\n   all published (acknowledged by the broker) after {published:.1f} s;"
        f" {sum(r.repeats for r in runs):,} sent again in all runs"
        f"\n   the collector spooled the flood and confirmed it; all {DRAINED:,} in the store"
        f" after {stored:.1f} s ({DRAINED / stored:,.0f} msg/s)"
        f"\n   the collector's CPU time (both processes, start-up included):"
        f" {cpu:.1f} s, {cpu / DRAINED * 1e6:.0f} µs a message"
        f"\n   without a spool (confirmed as committed), one run:"
        f" {DRAINED / unspooled.confirmed_s:,.0f} msg/s, ratio {base / unspooled.confirmed_s:.2f};"
        f" all in the store after {unspooled.stored_s:.1f} s"
    )


def drain_once(broker: BrokerSettings, workdir: Path, spool: bool = True) -> DrainRun:
    """One box's outbox of DRAINED messages drained to a fresh `collector run`, with a
    spool or without."""
    workdir.mkdir()
    count = DRAINED
    device = DeviceSettings(id="air-drain", site="bench", kind="air", name="drain")
    path = workdir / "outbox.sqlite"
    outbox = Outbox(path)
    epoch = outbox.epoch
    outbox.close()
    start = datetime.now(UTC) - timedelta(hours=30)
    payloads = [
        encode(
            telemetry(device.id, seq, start + timedelta(seconds=seq)).model_copy(
                update={"epoch": epoch}
            )
        )
        for seq in range(1, count + 1)
    ]
    db = sqlite3.connect(path)
    with db:  # the queue an outage leaves, written at once rather than message by message
        db.executemany(
            "INSERT INTO outbox (channel, payload, created, epoch, seq)"
            " VALUES ('telemetry', ?, ?, ?, ?)",
            ((payloads[seq - 1], time.time(), epoch, seq) for seq in range(1, count + 1)),
        )
        db.execute("UPDATE counters SET value = ? WHERE name = 'next_seq'", (count + 1,))
    db.close()
    store = {"kind": "sqlite", "path": str(workdir / "drain-store.sqlite")}
    # A collector as docs/architecture.md recommends it, with a spool: a flood of backlog
    # is spooled and confirmed, and drains into the store after it.
    spool_path = workdir / "drain-spool.sqlite" if spool else None
    config = collector_config(workdir, broker, store, spool=spool_path)
    log = (workdir / "drain-collector.log").open("wb")
    # The collector's CPU time, its commit process's included (both reaped before it is
    # read): what the drain costs it whatever else the machine runs meanwhile.
    cpu_before = _children_cpu_s()
    collector = subprocess.Popen(
        [str(Path(sys.executable).with_name("collector")), "run", "-c", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    outbox = Outbox(path)
    uplink = Uplink(broker, device, outbox, boot_id="bench")
    drained = open_store(load_collector(config))

    def in_store() -> int:
        return sum(d.messages for d in drained.devices() if d.device == device.id)

    async def drain() -> tuple[float, float, float]:
        await asyncio.sleep(3)  # the collector subscribed
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(uplink.run(stop))
        sent = None
        # Watched by the uplink's count of what was confirmed, not by counting the
        # outbox's rows: a count(*) of 100,000 rows every 50 ms would take the agent's
        # own time on its own connection.
        while uplink.confirmed < count:
            if sent is None and outbox.depth() == outbox.unconfirmed():
                sent = time.perf_counter() - began
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - began
        stop.set()
        await task
        assert outbox.depth() == 0, "confirmed, yet still in the outbox"
        async with asyncio.timeout(300):  # what the collector spooled reaches the store
            while in_store() < count:
                await asyncio.sleep(0.25)
        return sent or elapsed, elapsed, time.perf_counter() - began

    try:
        sent, elapsed, stored = asyncio.run(drain())
    finally:
        collector.terminate()
        collector.wait(30)
    collector_cpu = _children_cpu_s() - cpu_before
    outbox.close()
    # Messages the store received twice: what the uplink sent again because a
    # confirmation came late or was lost, work the collector did for nothing.
    repeats = sum(d.duplicates for d in drained.devices() if d.device == device.id)
    drained.close()
    return DrainRun(elapsed, sent, stored, repeats, collector_cpu)


def _children_cpu_s() -> float:
    """User and system seconds of the child processes ended so far, theirs included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class TimedCommits:
    """The commit process as `collector run` uses it, timing each message from its
    sample time to the answer that it is committed."""

    def __init__(self, process: CommitProcess) -> None:
        self._process = process
        self.depth = process.depth
        self.committed: list[float] = []

    def commit(self, batch: Sequence[Arrival], received: datetime) -> CommitResult:
        result = self._process.commit(batch, received)
        now = datetime.now(UTC)
        self.committed += [
            (now - decode(payload, Telemetry).samples[0].ts).total_seconds()
            for topic, payload, _ in batch
            if topic.endswith("/telemetry")  # not the retained status of an earlier figure
        ]
        return result


def latency_figures(broker: BrokerSettings, workdir: Path) -> None:
    devices, seconds = 200, 20
    store = {"kind": "sqlite", "path": str(workdir / "latency.sqlite")}
    process = CommitProcess(collector_config(workdir, broker, store))
    timed = TimedCommits(process)
    committed = timed.committed
    round_trips: list[float] = []

    async def main() -> None:
        ingest = Ingest(broker, IngestSettings(client_id="latency"), timed)
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await ingest.connected.wait()
        async with aiomqtt.Client(broker.host, broker.port) as probe:
            await probe.subscribe("pq/v1/bench/air-000/telemetry", qos=1)
            async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=400) as pub:

                async def watch() -> None:
                    async for message in probe.messages:
                        ts = decode(message.payload, Telemetry).samples[0].ts
                        round_trips.append((datetime.now(UTC) - ts).total_seconds())

                watcher = asyncio.create_task(watch())
                for second in range(1, seconds + 1):
                    tick = time.monotonic()
                    now = datetime.now(UTC)
                    await asyncio.gather(
                        *(
                            pub.publish(
                                topic_for("pq", "bench", f"air-{d:03d}", Channel.TELEMETRY),
                                encode(telemetry(f"air-{d:03d}", second, now)),
                                qos=1,
                            )
                            for d in range(devices)
                        )
                    )
                    await asyncio.sleep(max(0.0, 1 - (time.monotonic() - tick)))
                await asyncio.sleep(2)
                watcher.cancel()
        stop.set()
        await task

    asyncio.run(main())
    process.close()
    q = statistics.quantiles(committed, n=100)
    b = statistics.quantiles(round_trips, n=100)
    print(
        f"\n3. sample time to committed, {devices} devices x 1/s for {seconds} s"
        f" ({len(committed):,} messages): p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
        f" | bare broker round trip p50 {b[49] * 1000:.1f} ms, p99 {b[98] * 1000:.1f} ms"
    )


def main() -> None:
    """All three figures, or those named on the command line (`ingest`, `drain`,
    `latency`)."""
    wanted = set(sys.argv[1:]) or {"ingest", "drain", "latency"}
    logging.disable(logging.WARNING)  # paho warns of every pending publish under load
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker_process = Mosquitto(work, BROKER_TUNING)
        broker_process.start()
        influxd = Influxd(work / "influxd")
        influxd.start()
        broker = BrokerSettings(host=broker_process.host, port=broker_process.port, protocol="5")
        try:
            for protocol in ("3.1.1", "5") if "ingest" in wanted else ():
                ingest_figures(
                    broker.model_copy(update={"protocol": protocol}),
                    work,
                    {
                        "SQLite": lambda: {
                            "kind": "sqlite",
                            "path": str(work / f"{uuid.uuid4().hex}.sqlite"),
                        },
                        "InfluxDB": lambda: {
                            "kind": "influxdb",
                            "url": influxd.url,
                            "api": "v1",
                            "database": f"b{uuid.uuid4().hex[:8]}",
                        },
                    },
                )
            if "drain" in wanted:  # as an agent publishes: MQTT 5 where it can
                drain_figures(broker, work)
            if "latency" in wanted:
                latency_figures(broker.model_copy(update={"protocol": "3.1.1"}), work)
        finally:
            influxd.stop()
            broker_process.stop()


if __name__ == "__main__":
    main()
