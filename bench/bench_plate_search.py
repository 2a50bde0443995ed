#!/usr/bin/env python3
"""Plate search over a month of reads on the embedded police database.

50 cameras each read one vehicle every 5 seconds for 30 days (about 26 million reads).
The vehicles are an island's traffic: 200,000 plates, a few passing very often (taxis,
delivery bikes), most rarely (a Zipf law), so a plate's sightings range from one to
tens of thousands. Reads are written straight into the police database's tables (no
crops: they do not change what a search touches), then the search indexes are built.

Figures:
1. Exact, partial (a leading wildcard in half of them) and fuzzy searches, 60 of each
   on plates drawn from the traffic: p50 and p95 answer time of `search()` (audit
   record included), against a full scan of the reads table answering the same
   question in the same run (GLOB on every read, no index). Goal: p95 under 1 s each.
2. The search indexes' size on disk (the `(plate, ts)` index on reads and the distinct
   plate texts with their two indexes), and the write cost they add per read: the same
   reads written as `PlateLog.record` writes them, with and without them.

Run: .venv/bin/python bench/bench_plate_search.py [--days 30] [--workdir DIR]
"""

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from collector.police.database import PoliceDb, plate_text_row, utc_text
from collector.police.records import PLATE_TEXT_UPSERT as UPSERT
from collector.police.search import PlateQuery, normalised, search
from iotwire.plate_formats import SERIES_LETTERS

SEED = 2026
CAMERAS = 50
EVERY_S = 5
VEHICLES = 200_000
QUERIES = 60
BATCH = 200_000


def traffic(rng: random.Random) -> list[str]:
    letters = sorted(SERIES_LETTERS)
    plates: set[str] = set()
    while len(plates) < VEHICLES:
        province = rng.randint(11, 99)
        if rng.random() < 0.5:
            plates.add(f"{province}{rng.choice(letters)}{rng.randint(0, 99999):05d}")
        else:
            plates.add(
                f"{province}{rng.choice(letters)}{rng.randint(1, 9)}{rng.randint(0, 99999):05d}"
            )
    return sorted(plates)


def reads(
    rng: random.Random, plates: list[str], days: int, now: datetime
) -> Iterator[tuple[Any, ...]]:
    weights = [1 / (rank + 10) for rank in range(len(plates))]
    start = now - timedelta(days=days)
    steps = days * 86_400 // EVERY_S
    chunk = 10_000
    for first in range(0, steps, chunk):
        count = min(chunk, steps - first)
        drawn = rng.choices(plates, weights, k=count * CAMERAS)
        for i in range(count):
            ts = utc_text(start + timedelta(seconds=(first + i) * EVERY_S))
            for camera in range(CAMERAS):
                plate = drawn[i * CAMERAS + camera]
                device = f"cam-{camera:02d}"
                yield (
                    device, first + i, f"pole-{camera:02d}", "north", ts, plate, plate,
                    0.9, "[0,0,1,1]", "white", None, ts, 0,
                )  # fmt: skip


def build(path: Path, days: int, now: datetime) -> tuple[list[str], int]:
    rng = random.Random(SEED)
    plates = traffic(rng)
    db = PoliceDb(path)
    raw = db._db  # the bench loads rows in bulk, below the library
    for index in ("plate_reads_plate", "plate_reads_ts"):
        raw.execute(f"DROP INDEX {index}")
    raw.execute("PRAGMA journal_mode=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    total, started = 0, time.monotonic()
    rows = reads(rng, plates, days, now)
    while True:
        batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
        if not batch:
            break
        raw.execute("BEGIN")
        raw.executemany("INSERT INTO plate_reads VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        raw.execute("COMMIT")
        total += len(batch)
        print(f"\r  {total:,} reads written, {time.monotonic() - started:.0f} s", end="")
    print()
    raw.execute("BEGIN")
    raw.execute("CREATE INDEX plate_reads_ts ON plate_reads (ts)")
    size_before = _size(raw)
    raw.execute("CREATE INDEX plate_reads_plate ON plate_reads (plate, ts)")
    raw.executemany(
        "INSERT INTO plate_texts VALUES (?, ?, ?, ?)",
        (
            plate_text_row(p, last)
            for p, last in raw.execute("SELECT plate, max(ts) FROM plate_reads GROUP BY plate")
        ),
    )
    raw.execute("COMMIT")
    raw.execute("ANALYZE")
    grown = _size(raw) - size_before
    db.close()
    print(f"  built in {time.monotonic() - started:.0f} s")
    return plates, grown


def _size(raw: sqlite3.Connection) -> int:
    [(pages,)] = raw.execute("PRAGMA page_count").fetchall()
    [(page,)] = raw.execute("PRAGMA page_size").fetchall()
    return int(pages * page)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def scan(db: PoliceDb, pattern: str, since: str) -> list[tuple[Any, ...]]:
    return db.rows(
        "SELECT * FROM plate_reads NOT INDEXED WHERE plate GLOB ? AND ts >= ?", (pattern, since)
    )


def fuzzy_scan(db: PoliceDb, text: str, since: str) -> list[tuple[Any, ...]]:
    patterns = {f"{text[:i]}?{text[i + 1 :]}" for i in range(len(text))}
    where = " OR ".join("plate GLOB ?" for _ in patterns)
    return db.rows(
        f"SELECT * FROM plate_reads NOT INDEXED WHERE ts >= ? AND ({where})",  # noqa: S608
        (since, *patterns),
    )


def questions(rng: random.Random, plates: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(search text, the GLOB a full scan answers it with) per kind of search."""
    exact, partial, fuzzy = [], [], []
    for _ in range(QUERIES):
        plate = rng.choice(plates)
        exact.append((plate, plate))
        if rng.random() < 0.5:
            text = "*" + plate[-4:]
        else:
            i = rng.randrange(3, len(plate) - 1)
            text = plate[:i] + "?" + plate[i + 1 :]
        partial.append((text, normalised(text)))
        near = rng.choice(plates)
        fuzzy.append((near, near))
    return {"exact": exact, "partial": partial, "fuzzy": fuzzy}


def search_figures(path: Path, plates: list[str], days: int, now: datetime) -> None:
    db = PoliceDb(path)
    since = utc_text(now - timedelta(days=days))
    rng = random.Random(SEED + 1)
    print(f"{'search':<8} {'p50 s':>8} {'p95 s':>8} {'scan p50 s':>11} {'ratio':>7}  goal")
    for kind, asked in questions(rng, plates).items():
        fuzzy = kind == "fuzzy"
        full_scan = fuzzy_scan if fuzzy else scan
        times = [
            timed(partial(search, db, PlateQuery(text, "bench", fuzzy=fuzzy), "bench", days, now))
            for text, _ in asked
        ]
        baseline = [timed(partial(full_scan, db, glob, since)) for _, glob in asked[:3]]
        p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
        scan_p50 = statistics.median(baseline)
        verdict = "ok" if p95 < 1 else "MISSED"
        print(
            f"{kind:<8} {p50:>8.4f} {p95:>8.4f} {scan_p50:>11.2f} {scan_p50 / p50:>6.0f}x"
            f"  p95 < 1 s: {verdict}"
        )
    db.close()


def write_cost(workdir: Path, now: datetime) -> None:
    """A read's write as `PlateLog.record` makes it (one transaction per read), with the
    search's index and distinct-text upsert and without them, each into a fresh
    database: what the search adds per read."""
    rng = random.Random(SEED + 2)
    plates = traffic(rng)[:20_000]
    count = 20_000
    rows = [
        ("cam-01", i, "pole-01", "north", utc_text(now - timedelta(seconds=count - i)),
         rng.choice(plates), "", 0.9, "[0,0,1,1]", "white", None, utc_text(now), 0)
        for i in range(count)
    ]  # fmt: skip
    dbs = {indexed: PoliceDb(workdir / f"write-{indexed}.sqlite") for indexed in (False, True)}
    with dbs[False].transaction() as tx:
        tx.execute("DROP INDEX plate_reads_plate")
    spent: dict[bool, list[float]] = {False: [], True: []}
    rounds = 8  # alternating, so the machine's noise falls on both alike
    size = count // rounds
    for r in range(rounds):
        for indexed in (False, True) if r % 2 else (True, False):
            started = time.perf_counter()
            for row in rows[r * size : (r + 1) * size]:
                with dbs[indexed].transaction() as tx:
                    tx.execute("INSERT INTO plate_reads VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
                    if indexed:
                        tx.execute(UPSERT, plate_text_row(row[5], row[4]))
            spent[indexed].append((time.perf_counter() - started) / size)
    for db in dbs.values():
        db.close()
    cost = {indexed: statistics.median(times) for indexed, times in spent.items()}
    added = cost[True] - cost[False]
    print(
        f"write per read: {cost[True] * 1e6:.0f} µs with the search's index and upsert, "
        f"{cost[False] * 1e6:.0f} µs without (baseline): +{added * 1e6:.0f} µs, "
        f"ratio {cost[True] / cost[False]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        path = workdir / "police.sqlite"
        print(f"{args.days} days x {CAMERAS} cameras, a read every {EVERY_S} s each:")
        plates, grown = build(path, args.days, now)
        size = path.stat().st_size / 2**30
        print(f"database {size:.2f} GiB; search indexes {grown / 2**20:.0f} MiB")
        search_figures(path, plates, args.days, now)
        write_cost(workdir, now)


if __name__ == "__main__":
    main()
