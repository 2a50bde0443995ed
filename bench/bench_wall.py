#!/usr/bin/env python3
"""The wall's cost to the collector, and how fresh it is, each against a baseline from the
same run (issue #19):

1. Ingest: a burst of `MESSAGES` telemetry messages published as fast as one client can
   to a real Mosquitto, until a real `collector run` (commit process, SQLite store, API
   on) has stored them all: with no screen open (the baseline), then with twelve
   signed-in wall screens on `/wall/stream`, each reading every event. Goal: ratio >= 0.9.
2. Freshness: while `BOXES` boxes publish a message every second, each of the twelve
   screens notes when each sample arrives. The time from a sample's publication to its
   arrival on a screen bounds the time from its commit to the screen from above (it adds
   the broker and the commit); its p50 and p99 are shown beside the bare broker's own
   publish-to-subscriber time measured at the same moment. Goal: p99 < 2 s.

The screens run in a process of their own, so their reading costs the collector no GIL.
Run: .venv/bin/python bench/bench_wall.py
"""

import asyncio
import http.client
import json
import logging
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import aiomqtt
import yaml

from iotwire.codec import encode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel, topic_for
from testbed.servers import Mosquitto
from testbed.waiting import free_port, wait_for_port, wait_until

SCREENS = 12
MESSAGES = 20_000
BOXES = 150
FRESHNESS_S = 30
PARAMETERS = (
    "pm2_5",
    "pm10",
    "no2",
    "so2",
    "co",
    "o3",
    "temperature",
    "humidity",
    "pressure",
    "wind",
)
BIN = Path(sys.executable).parent
PASSWORD = "bench wall password"  # noqa: S105 - a throwaway user of this run


def message(device: str, seq: int, ts: datetime) -> tuple[str, bytes]:
    readings = tuple(
        Reading(parameter=p, value=float(seq % 97) + i, unit="µg/m³")
        for i, p in enumerate(PARAMETERS)
    )
    telemetry = Telemetry(
        device=device,
        seq=seq,
        clock=ClockSync.SYNCED,
        samples=(Sample(sensor="aqms", ts=ts, readings=readings),),
    )
    return topic_for("pq", "bench", device, Channel.TELEMETRY), encode(telemetry)


class Collector:
    """`collector run` with its API and metrics, in `workdir`."""

    def __init__(self, workdir: Path, broker: Mosquitto) -> None:
        self.api, self.metrics = free_port(), free_port()
        self.config = workdir / "collector.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "broker": {"host": broker.host, "port": broker.port},
                    "store": {"kind": "sqlite", "path": str(workdir / "store.sqlite")},
                    "ingest": {"client_id": "collector-bench"},
                    "api": {"port": self.api, "users_path": str(workdir / "users.sqlite")},
                    "metrics": {"port": self.metrics},
                }
            )
        )
        self._log = (workdir / "collector.log").open("ab")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [str(BIN / "collector"), "run", "-c", str(self.config)],
            stdout=self._log,
            stderr=self._log,
        )
        wait_for_port(self.api, 30)
        wait_until(lambda: self.counter("collector_messages_received") >= 0, 30, "metrics")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(60)

    def counter(self, name: str) -> float:
        try:
            url = f"http://127.0.0.1:{self.metrics}/metrics"
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return -1
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "_total "):
                return float(line.rsplit(" ", 1)[1])
        return -1

    def user(self) -> None:
        for args in (
            ("users", "add", "wall", "--role", "ops"),
            ("users", "password", "wall", "--stdin"),
        ):
            subprocess.run(
                [str(BIN / "collector"), *args, "-c", str(self.config)],
                input=PASSWORD + "\n",
                text=True,
                capture_output=True,
                check=True,
            )


def screen(port: int, ready: threading.Barrier, arrivals: list[float], since: list[float]) -> None:
    """One wall screen: sign in, open the stream, and once `since` holds a time, note the
    age on arrival of each sample published after it. Until then it only reads: the
    screens share the collector's two cores, and a browser on the wall does not."""
    form = urllib.parse.urlencode({"name": "wall", "password": PASSWORD}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request(
        "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    answer = connection.getresponse()
    answer.read()
    cookie = (answer.headers["Set-Cookie"] or "").split(";")[0]
    connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", "/wall/stream", headers={"Cookie": cookie})
    stream = connection.getresponse()
    ready.wait()
    event = ""
    for raw in stream:
        if not since:
            continue
        if raw.startswith(b"event:"):
            event = raw.decode().partition(":")[2].strip()
        elif raw.startswith(b"data:") and event == "samples":
            now = time.time()
            for sample in json.loads(raw.partition(b":")[2]):
                published = datetime.fromisoformat(sample["ts"]).timestamp()
                if published >= since[0]:
                    arrivals.append(now - published)


def screens(port: int, pipe: Connection) -> None:
    """Twelve screens in this process. Sent a time, they measure samples published from
    then on; told `report`, it sends back the ages seen; told `stop`, it ends (its
    threads with it)."""
    ready = threading.Barrier(SCREENS + 1)
    since: list[float] = []
    arrivals: list[float] = []
    threads = [
        threading.Thread(target=screen, args=(port, ready, arrivals, since), daemon=True)
        for _ in range(SCREENS)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    pipe.send("open")
    while (order := pipe.recv()) != "stop":
        if isinstance(order, float):
            since.append(order)
        else:
            pipe.send(list(arrivals))


async def publish(broker: Mosquitto, items: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=1000) as client:
        for start in range(0, len(items), 1000):
            await asyncio.gather(
                *(client.publish(t, p, qos=1) for t, p in items[start : start + 1000])
            )


def burst_seconds(collector: Collector, broker: Mosquitto, first_seq: int) -> float:
    """Seconds from the first of MESSAGES published to the last of them stored."""
    now = datetime.now(UTC)
    items = [message(f"air-{i % BOXES:03d}", first_seq + i // BOXES, now) for i in range(MESSAGES)]
    target = collector.counter("collector_messages_stored") + MESSAGES
    began = time.perf_counter()
    asyncio.run(publish(broker, items))
    wait_until(lambda: collector.counter("collector_messages_stored") >= target, 600, "stored")
    return time.perf_counter() - began


async def steady(broker: Mosquitto, seconds: int, first_seq: int, ages: list[float]) -> None:
    """BOXES boxes, one message a second each, for `seconds`; `ages` gets the bare
    broker's publish-to-subscriber time of each."""

    async def listen() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe("pq/v1/bench/+/telemetry", qos=1)
            async for m in client.messages:
                if isinstance(m.payload, bytes):
                    ts = json.loads(m.payload)["samples"][0]["ts"]
                    ages.append(time.time() - datetime.fromisoformat(ts).timestamp())

    listening = asyncio.create_task(listen())
    await asyncio.sleep(0.5)
    async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=1000) as client:
        for second in range(seconds):
            tick = time.monotonic()
            now = datetime.now(UTC)
            items = [message(f"air-{b:03d}", first_seq + second, now) for b in range(BOXES)]
            await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in items))
            await asyncio.sleep(max(0.0, 1 - (time.monotonic() - tick)))
    await asyncio.sleep(2)
    listening.cancel()


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt counts the bursts' publishes
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir)
        broker.start()
        collector = Collector(workdir, broker)
        try:
            collector.start()
            collector.user()
            run(collector, broker)
        finally:
            collector.stop()
            broker.stop()


def run(collector: Collector, broker: Mosquitto) -> None:
    print(f"1. ingest of a burst of {MESSAGES:,} messages ({len(PARAMETERS)} readings each):")
    per_burst = MESSAGES // BOXES + 1
    base_s = burst_seconds(collector, broker, 1)
    parent, child = multiprocessing.Pipe()
    wall = multiprocessing.Process(target=screens, args=(collector.api, child))
    wall.start()
    if parent.recv() != "open":
        raise RuntimeError("the screens did not open")
    wall_s = burst_seconds(collector, broker, 1 + per_burst)
    base_rate, wall_rate = MESSAGES / base_s, MESSAGES / wall_s
    print(f"   no screen open           {base_rate:8,.0f} msg/s ({base_s:.1f} s)")
    print(
        f"   {SCREENS} wall screens open     {wall_rate:8,.0f} msg/s ({wall_s:.1f} s)"
        f" | ratio {wall_rate / base_rate:.2f} (goal >= 0.9)"
    )
    print(f"2. freshness, {BOXES} boxes sending every second for {FRESHNESS_S} s:")
    parent.send(time.time())
    broker_ages: list[float] = []
    asyncio.run(steady(broker, FRESHNESS_S, 1 + 2 * per_burst, broker_ages))
    parent.send("report")
    ages: list[float] = parent.recv()
    parent.send("stop")
    wall.join(10)
    p99, broker_p99 = percentile(ages, 99), percentile(broker_ages, 99)
    print(
        f"   bare broker, publish -> subscriber  p50 {percentile(broker_ages, 50) * 1000:6.0f} ms"
        f"  p99 {broker_p99 * 1000:6.0f} ms ({len(broker_ages):,} messages)"
    )
    print(
        f"   publish -> commit -> wall screen    p50 {percentile(ages, 50) * 1000:6.0f} ms"
        f"  p99 {p99 * 1000:6.0f} ms ({len(ages):,} samples on {SCREENS} screens)"
        f" | p99 ratio {p99 / broker_p99:.1f} (goal p99 < 2 s)"
    )


if __name__ == "__main__":
    main()
