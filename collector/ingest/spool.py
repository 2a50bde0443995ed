"""The collector's own store-and-forward: where messages wait while the store is down.

When the store cannot commit, a batch is committed here instead, exactly as it came off
the wire (topic, payload, arrival time), and only then acknowledged to the broker: the
broker's queue for a persistent session is bounded, a local disk is far larger. While
anything is spooled, new messages join the spool behind it, so the store later sees every
device's messages in the order they arrived. The spool drains through the same validation
and store path as live messages; SQLite in WAL mode with synchronous=FULL, like the outbox
on the boxes, so a collector killed mid-outage loses nothing it acknowledged.
"""

import contextlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collector.query import from_micros, to_micros
from iotruntime.sqlite_files import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    received INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Spooled:
    id: int
    topic: str
    payload: bytes
    received: datetime


class Spool:
    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path, synchronous_full=True)
        self._db.executescript(_SCHEMA)
        self._depth = self._count()

    def put(self, batch: Iterable[tuple[str, bytes]], received: datetime) -> None:
        """Commit a batch in one transaction: after this returns it may be acknowledged."""
        rows = [(topic, payload, to_micros(received)) for topic, payload in batch]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO spool (topic, payload, received) VALUES (?, ?, ?)", rows
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._depth += len(rows)

    def peek(self, limit: int, max_bytes: int = sys.maxsize) -> list[Spooled]:
        """The oldest messages, up to `limit` and no more once their payloads reach
        `max_bytes` (at least one): a spooled batch may hold a thousand messages."""
        taken: list[Spooled] = []
        size = 0
        query = "SELECT id, topic, payload, received FROM spool ORDER BY id LIMIT ?"
        with contextlib.closing(self._db.execute(query, (limit,))) as rows:
            for i, topic, payload, us in rows:
                taken.append(Spooled(i, topic, payload, from_micros(us)))
                size += len(payload)
                if size >= max_bytes:
                    break
        return taken

    def remove(self, ids: Iterable[int]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            removed = sum(
                self._db.execute("DELETE FROM spool WHERE id = ?", (i,)).rowcount for i in ids
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._depth -= removed

    @property
    def depth(self) -> int:
        """Messages waiting, kept in memory: asked on every batch, it must cost nothing."""
        return self._depth

    def _count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM spool").fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()
