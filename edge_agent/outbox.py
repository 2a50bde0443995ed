"""Durable store-and-forward queue between the sources and the uplink.

A message exists once it is committed here; it leaves only after the broker acknowledged
it. The sequence number is allocated in the same transaction that stores the message, so
numbers survive restarts and never repeat, and the collector can count gaps and duplicates
against them. SQLite in WAL mode with synchronous=FULL: a power cut on a pole loses
nothing that append() returned for.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from iotwire.codec import encode
from iotwire.messages import WireModel
from iotwire.topics import Channel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('next_seq', 1);
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    channel: Channel
    payload: bytes


class Outbox:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.changed = asyncio.Event()

    def append(self, channel: Channel, build: Callable[[int], WireModel]) -> int:
        """Commit the message `build(seq)` makes with the next sequence number; return it."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (seq,) = db.execute("SELECT value FROM counters WHERE name='next_seq'").fetchone()
            payload = encode(build(seq))
            db.execute(
                "INSERT INTO outbox (seq, channel, payload, created) VALUES (?, ?, ?, ?)",
                (seq, channel.value, payload, time.time()),
            )
            db.execute("UPDATE counters SET value=? WHERE name='next_seq'", (seq + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.changed.set()
        return seq

    def peek(self, limit: int) -> list[Entry]:
        """The oldest `limit` messages, in sequence order."""
        rows = self._db.execute(
            "SELECT seq, channel, payload FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [Entry(seq, Channel(channel), payload) for seq, channel, payload in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget messages the broker has acknowledged."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("DELETE FROM outbox WHERE seq=?", ((s,) for s in seqs))
        self._db.execute("COMMIT")

    def depth(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def last_seq(self) -> int:
        """The latest sequence number handed out (0 before the first message)."""
        (next_seq,) = self._db.execute(
            "SELECT value FROM counters WHERE name='next_seq'"
        ).fetchone()
        return int(next_seq) - 1

    def close(self) -> None:
        self._db.close()
