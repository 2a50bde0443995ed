#!/usr/bin/env python3
"""Two figures for the stores, each against a baseline from the same run:

1. Samples per second the InfluxDB store writes (line formatting, the duplicate lookup,
   the data and the ledger writes) against a bare HTTP POST of the same line protocol in
   the same batches to the same server: the store's data and ledger lines, formatted
   beforehand. Goal: ratio >= 0.8. Also against the data lines alone, which shows what
   the per-message ledger (exact duplicate and gap counts) costs.
2. Query latency for 30 days of 1-minute data from 16 stations, hourly means per station:
   the SQLite store and the InfluxDB store, from raw data and from the hourly rollup.

Starts its own InfluxDB 1.x server (Debian's influxd) on a temporary directory.
Run: .venv/bin/python bench/bench_stores.py
"""

import statistics
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.query import AggregateQuery
from collector.stores import line_protocol as lp
from collector.stores.base import Delivery, Store
from collector.stores.influxdb import InfluxStore
from collector.stores.sqlite import SqliteStore
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from tests.conftest import Influxd

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
) -> list[Delivery]:
    return [
        Delivery(
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


def store_write(url: str, database: str, data: list[Delivery]) -> float:
    store = influx(url, database)
    store.write_batch(data[:1])  # database and policies exist before the clock starts
    began = time.perf_counter()
    for i in range(1, len(data), BATCH):
        store.write_batch(data[i : i + BATCH])
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


def bare_write(url: str, database: str, data: list[Delivery], with_ledger: bool) -> float:
    """The store's own line protocol, formatted beforehand, POSTed in the same batches:
    the data to the raw policy and, `with_ledger`, the ledger points to the long one."""
    pool = urllib3.PoolManager()
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
    began = time.perf_counter()
    for policy, body in requests:
        params = urllib.parse.urlencode({"db": database, "rp": policy, "precision": "ns"})
        response = pool.request("POST", f"{url}/write?{params}", body=body)
        assert response.status == 204, response.data
    return time.perf_counter() - began


def write_figures(url: str) -> None:
    # As a collector sees them live: 50 stations sampling every 10 s, 80 minutes.
    data = deliveries(50, 480, PARAMETERS, timedelta(seconds=10))
    samples = (len(data) - 1) * len(PARAMETERS)
    bare, data_only, store = [], [], []
    for run in range(5):
        bare.append(samples / bare_write(url, f"bare{run}", data, with_ledger=True))
        data_only.append(samples / bare_write(url, f"data{run}", data, with_ledger=False))
        store.append(samples / store_write(url, f"store{run}", data))
    b, d, s = (statistics.median(x) for x in (bare, data_only, store))
    print(f"write, {samples} samples in batches of {BATCH} messages, median of 5 runs:")
    print(f"  bare POST of the store's line protocol (data + ledger) {b:10,.0f} samples/s")
    print(f"  InfluxDB store                                        {s:10,.0f} samples/s")
    print(f"  ratio store / bare                                    {s / b:10.2f}   (goal >= 0.8)")
    print(f"  bare POST of the data alone, without the ledger      {d:10,.0f} samples/s")
    print(f"  ratio store / data alone                              {s / d:10.2f}")


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
