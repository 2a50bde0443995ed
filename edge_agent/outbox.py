"""Durable store-and-forward queue between the sources and the uplink.

A message exists once it is committed here; it leaves only after the broker acknowledged
it. The sequence number is allocated in the same transaction that stores the message, so
numbers survive restarts and never repeat, and the collector can count gaps and duplicates
against them. SQLite in WAL mode with synchronous=FULL: a power cut on a pole loses
nothing that append() returned for.
"""

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import OutboxSettings
from iotruntime.sqlite_files import open_sqlite
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
CREATE INDEX IF NOT EXISTS outbox_by_channel ON outbox (channel, seq);
CREATE INDEX IF NOT EXISTS outbox_by_age ON outbox (created);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('next_seq', 1);
INSERT OR IGNORE INTO counters VALUES ('dropped', 0);
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    channel: Channel
    payload: bytes
    created: float


class Outbox:
    def __init__(
        self,
        path: Path,
        limits: OutboxSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = open_sqlite(path, group_read=True, synchronous_full=True)
        self._db.executescript(_SCHEMA)
        self._limits = limits or OutboxSettings()
        self._clock = clock
        (total,) = self._db.execute(
            "SELECT coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._bytes = int(total)
        self._leased: dict[int, int] = {}  # seq -> size of what the uplink holds
        self.changed = asyncio.Event()

    def append(self, channel: Channel, build: Callable[[int], WireModel]) -> int:
        """Commit the message `build(seq)` makes with the next sequence number; return it.
        Bounds are enforced in the same transaction, so the queue on disk never exceeds them
        and the count of what was dropped is exact across power cuts."""
        db = self._db
        seq: int
        db.execute("BEGIN IMMEDIATE")
        try:
            (seq,) = db.execute("SELECT value FROM counters WHERE name='next_seq'").fetchone()
            payload = encode(build(seq))
            db.execute(
                "INSERT INTO outbox (seq, channel, payload, created) VALUES (?, ?, ?, ?)",
                (seq, channel.value, payload, self._clock()),
            )
            db.execute("UPDATE counters SET value=? WHERE name='next_seq'", (seq + 1,))
            freed = self._enforce_bounds(len(payload))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._bytes += len(payload) - freed
        self.changed.set()
        return seq

    def _enforce_bounds(self, added: int) -> int:
        """Drop what the bounds require, inside the caller's transaction; bytes freed."""
        limits, db = self._limits, self._db
        too_old = self._clock() - limits.max_age_h * 3600
        chosen = {
            seq: size
            for seq, size in db.execute(
                "SELECT seq, length(payload) FROM outbox WHERE created < ?", (too_old,)
            )
            if seq not in self._leased
        }
        excess = self._bytes + added - sum(chosen.values()) - limits.max_mb * 1e6
        order = "ASC" if limits.drop_within == "oldest" else "DESC"
        for channel in limits.drop_order:
            if excess <= 0:
                break
            for seq, size in db.execute(
                f"SELECT seq, length(payload) FROM outbox WHERE channel = ? ORDER BY seq {order}",  # noqa: S608 - fixed text
                (channel,),
            ):
                if seq in self._leased or seq in chosen:
                    continue
                chosen[seq] = size
                excess -= size
                if excess <= 0:
                    break
        if not chosen:
            return 0
        db.executemany("DELETE FROM outbox WHERE seq = ?", ((seq,) for seq in chosen))
        db.execute("UPDATE counters SET value = value + ? WHERE name='dropped'", (len(chosen),))
        return sum(chosen.values())

    def peek(self, limit: int) -> list[Entry]:
        """The oldest `limit` messages, in sequence order, now held by the uplink: the
        bounds never drop a message the broker may already have."""
        rows = self._db.execute(
            "SELECT seq, channel, payload, created FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        self._leased = {seq: len(payload) for seq, _, payload, _ in rows}
        return [
            Entry(seq, Channel(channel), payload, created)
            for seq, channel, payload, created in rows
        ]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget messages the broker has acknowledged."""
        seqs = list(seqs)
        # A removal lost to a power cut only means the message is sent again, and the
        # collector counts it as a duplicate: it does not need an fsync of its own.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("DELETE FROM outbox WHERE seq=?", ((s,) for s in seqs))
        self._db.execute("COMMIT")
        self._db.execute("PRAGMA synchronous=FULL")
        for seq in seqs:
            self._bytes -= self._leased.pop(seq, 0)

    def depth(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def size_bytes(self) -> int:
        return self._bytes

    def dropped(self) -> int:
        """Messages the bounds have dropped since the outbox was created."""
        (count,) = self._db.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()
        return int(count)

    def last_seq(self) -> int:
        """The latest sequence number handed out (0 before the first message)."""
        (next_seq,) = self._db.execute(
            "SELECT value FROM counters WHERE name='next_seq'"
        ).fetchone()
        return int(next_seq) - 1

    def close(self) -> None:
        self._db.close()
