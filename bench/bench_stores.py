#!/usr/bin/env python3
"""Two figures for the stores, each against a baseline from the same run:

1. Samples per second the InfluxDB store writes (line formatting, the duplicate lookup,
   the data and the ledger writes) against a bare HTTP POST of the same line protocol in
   the same batches to the same server: the store's data and ledger lines, formatted
   beforehand. Goal: ratio >= 0.8. The store is driven as the commit process drives it,
   beginning a batch while the server writes the one before. Also against the data lines
   alone, which shows what the per-message ledger (exact duplicate and gap counts)
   costs, and against bare POSTs with as many requests in flight as the store may have
   batches, which shows what the server's own concurrency gives.
2. Query latency for 30 days of 1-minute data from 16 stations, hourly means per station:
   the SQLite store and the InfluxDB store, from raw data and from the hourly rollup.

Starts its own InfluxDB 1.x server (Debian's influxd) on a temporary directory.
Run: .venv/bin/python bench/bench_stores.py
"""

import statistics
import tempfile
import time
import urllib.parse
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import urllib3

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.ingest.commit_process import OVERLAP
from collector.query import AggregateQuery
from collector.stores.base import PendingBatch, ReceivedMessage, Store
from collector.stores.influxdb import InfluxStore
from collector.stores.influxdb import line_protocol as lp
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from testbed.servers import Influxd

PARAMETERS = ("pm10", "pm2_5", "no2", "so2", "co", "o3")
BATCH = 500  # messages per store commit, the ingest default
STATIONS = 16
DAYS = 30
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 1)


def telemetry(device: str, seq: int, ts: datetime, parameters: tuple[str, ...]) -> Telemetry:
    readings = tuple(
        Reading(parameter=p, value=float((seq * 7 + i) % 97) + 0.25, unit="µg/m³")
        for i, p in enumerate(parameters)
    )
    return Telemetry(
        device=device,
        seq=seq,
        clock=ClockSync.SYNCED,
        samples=(Sample(sensor="aqms", ts=ts, readings=readings),),
    )


def deliveries(
    stations: int, ticks: int, parameters: tuple[str, ...], step: timedelta
) -> list[ReceivedMessage]:
    return [
        ReceivedMessage(
            "dd",
            telemetry(f"air-{s:02d}", t + 1, START + t * step, parameters),
            START,
        )
        for t in range(ticks)
        for s in range(stations)
    ]


def influx(url: str, database: str) -> InfluxStore:
    settings = InfluxStoreSettings(kind="influxdb", url=url, api="v1", database=database)
    return InfluxStore(settings, RetentionSettings(raw_days=365, hourly_days=3650))


def store_write(url: str, database: str, data: list[ReceivedMessage]) -> float:
    """As the commit process drives the store: the next batch begins while the server
    still writes the one before it, `OVERLAP` batches at most."""
    store = influx(url, database)
    store.write_batch(data[:1])  # database and policies exist before the clock starts
    began = time.perf_counter()
    writing: deque[PendingBatch] = deque()
    for i in range(1, len(data), BATCH):
        writing.append(store.begin_batch(data[i : i + BATCH]))
        if len(writing) == OVERLAP:
            writing.popleft().outcomes()
    while writing:
        writing.popleft().outcomes()
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


def bare_write(
    url: str, database: str, data: list[ReceivedMessage], with_ledger: bool, in_flight: int = 1
) -> float:
    """The store's own line protocol, formatted beforehand, POSTed in the same batches:
    the data to the raw policy and, `with_ledger`, the ledger points to the long one;
    `in_flight` requests at once."""
    pool = urllib3.PoolManager(maxsize=in_flight)
    pool.request(
        "POST",
        f"{url}/query",
        fields={
            "q": f'CREATE DATABASE "{database}"; CREATE RETENTION POLICY "raw" ON "{database}"'
            f' DURATION 365d REPLICATION 1 DEFAULT; CREATE RETENTION POLICY "hourly" ON'
            f' "{database}" DURATION 3650d REPLICATION 1'
        },
    )
    requests = []
    for i in range(1, len(data), BATCH):
        batch = data[i : i + BATCH]
        lines = [line for d in batch for line in lp.reading_lines(d.site, d.message)]
        requests.append(("raw", "\n".join(lines).encode()))
        if with_ledger:
            ledger = [lp.delivery_line(d.site, d.message, d.received) for d in batch]
            requests.append(("hourly", "\n".join(ledger).encode()))

    def post(request: tuple[str, bytes]) -> None:
        policy, body = request
        params = urllib.parse.urlencode({"db": database, "rp": policy, "precision": "ns"})
        response = pool.request("POST", f"{url}/write?{params}", body=body)
        assert response.status == 204, response.data

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as posting:
        list(posting.map(post, requests))
    return time.perf_counter() - began


def write_figures(url: str) -> None:
    # As a collector sees them live: 50 stations sampling every 10 s, 80 minutes.
    data = deliveries(50, 480, PARAMETERS, timedelta(seconds=10))
    samples = (len(data) - 1) * len(PARAMETERS)
    bare, data_only, concurrent, store = [], [], [], []
    for run in range(5):
        bare.append(samples / bare_write(url, f"bare{run}", data, with_ledger=True))
        data_only.append(samples / bare_write(url, f"data{run}", data, with_ledger=False))
        concurrent.append(
            samples / bare_write(url, f"conc{run}", data, with_ledger=True, in_flight=OVERLAP)
        )
        store.append(samples / store_write(url, f"store{run}", data))
    b, d, c, s = (statistics.median(x) for x in (bare, data_only, concurrent, store))
    runs = ", ".join(f"{x / y:.2f}" for x, y in zip(store, bare, strict=True))
    print(f"write, {samples} samples in batches of {BATCH} messages, median of 5 runs:")
    for label, figure in (
        ("bare POST of the store's line protocol (data + ledger)", f"{b:10,.0f} samples/s"),
        (f"InfluxDB store, {OVERLAP} batches begun at once", f"{s:10,.0f} samples/s"),
        ("ratio store / bare", f"{s / b:10.2f}   (goal >= 0.8; runs {runs})"),
        ("bare POST of the data alone, without the ledger", f"{d:10,.0f} samples/s"),
        ("ratio store / data alone", f"{s / d:10.2f}"),
        (f"bare POST, {OVERLAP} requests in flight", f"{c:10,.0f} samples/s"),
        ("ratio store / that", f"{s / c:10.2f}"),
    ):
        print(f"  {label:55}{figure}")


def timed_query(store: Store, query: AggregateQuery, rollup: bool) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(5):
        began = time.perf_counter()
        rows = len(store.aggregate(query, rollup=rollup))
        times.append(time.perf_counter() - began)
    return statistics.median(times), rows


def query_figures(url: str, workdir: Path) -> None:
    minutes = DAYS * 24 * 60
    data = deliveries(STATIONS, minutes, ("pm2_5",), timedelta(minutes=1))
    end = START + timedelta(minutes=minutes)
    query = AggregateQuery(start=START, end=end, window=timedelta(hours=1))
    print(
        f"\nquery: hourly means, {STATIONS} stations x {DAYS} days of 1-minute data "
        f"({len(data):,} samples), median of 5:"
    )
    stores: list[tuple[str, Store]] = [
        ("SQLite", SqliteStore(workdir / "q.sqlite", RetentionSettings(raw_days=365))),
        ("InfluxDB", influx(url, "query")),
    ]
    for name, store in stores:
        began = time.perf_counter()
        for i in range(0, len(data), 5000):
            store.write_batch(data[i : i + 5000])
        store.roll_up(START, end)
        loaded = time.perf_counter() - began
        raw_s, raw_rows = timed_query(store, query, rollup=False)
        rolled_s, rolled_rows = timed_query(store, query, rollup=True)
        assert raw_rows == rolled_rows == STATIONS * DAYS * 24, (raw_rows, rolled_rows)
        print(
            f"  {name:9} from raw {raw_s * 1000:8.0f} ms   from rollup {rolled_s * 1000:6.0f} ms"
            f"   ({raw_rows} rows; loading and rolling up took {loaded:.0f} s)"
        )
        store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Influxd(Path(tmp) / "influxd")
        server.start()
        try:
            write_figures(server.url)
            query_figures(server.url, Path(tmp))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
