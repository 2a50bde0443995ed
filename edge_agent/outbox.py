"""Durable store-and-forward queue between the sources and the uplink.

A message exists once it is committed here. The sequence number is allocated in the same
transaction that stores the message, so numbers survive restarts and never repeat, and
the collector can count gaps and duplicates against them. SQLite in WAL mode with
synchronous=FULL: a power cut on a pole loses nothing that append() returned for.

Epochs. The outbox's state is born with a random epoch, stamped on every streamed message;
its sequence numbers count from 1 within it. A box that loses its state (a new SD card, a
reinstall) starts a new epoch, so the collector sees a reset, not a run of repeats. An
outbox made before epochs existed is migrated in place: what it queued is sent first,
unchanged and without an epoch (the collector counts those under the empty one), and the
new epoch starts at 1. Rows are keyed on `id`, the send order, so the two cannot collide.

Keep until confirmed. The broker's acknowledgement only marks a message sent; it leaves
when the collector confirms (`confirm`) that its store holds it. A message sent but
unconfirmed for `resend_after_s` is due again once a message sent after it has been
confirmed: the collector is taking this box's stream, so what it has not confirmed was lost
on the way. A message sent with it (in the same window) is due again `resend_after_s`
after that confirmation: the collector commits a window in pieces, and one that lags
behind the broker confirms the rest of a window soon after its first piece, however late
that was, so a backlog is not sent twice. So a broker or collector that dies holding it
costs a duplicate, never the message, and a collector that is merely away (the broker
holding its queue) or behind is not sent every message again and again. Messages from
before epochs, and every message with `delete_on: broker_ack`, leave on the broker's
acknowledgement, as before: nothing would ever confirm them.

Bounds and a disk that fills. `max_mb` bounds what the outbox puts on disk: database pages
in use plus the write-ahead log, which is checkpointed early and truncated so it cannot
eat the filesystem. The outbox also never grows its files into the last `keep_free_mb` of
the filesystem; it does not shrink them when someone else takes that space, since pages
it frees stay in its file for its own reuse and would give nobody room. So it drops by
policy before the disk is full. Every write is a small transaction (a large backlog is
dropped, marked or forgotten a few rows at a time), so none needs more log than the
bound leaves it. If the disk fills anyway (another writer took the rest), a write fails
with SQLITE_FULL: the outbox rolls back (SQLite may have done so already), releases a
ballast file it keeps for this moment and truncates its log, so it has room to drop by
policy and store again; a message it still cannot store is counted as dropped, with its
sequence number skipped, in the first transaction the disk allows. It never raises a full
disk into the agent, logs the cause once per episode, and takes its ballast back once the
filesystem has `keep_free_mb` free again.
"""

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import os
import secrets
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from edge_agent.config import OutboxSettings
from edge_agent.send_marks import Mark, SendMarks
from iotruntime.sqlite_files import open_sqlite
from iotwire.codec import encode
from iotwire.messages import WireModel
from iotwire.topics import Channel

log = logging.getLogger(__name__)

_T = TypeVar("_T")

SCHEMA_VERSION = 2
"""PRAGMA user_version of an outbox with epochs; 0 is the format before them."""

# `sent` is when the broker last acknowledged the row, and -0.5 until it has: a REAL the
# size of a time, so marking a row sent rewrites it in place, one page, where NULL would
# make SQLite rewrite a plate's whole overflow chain. seq is NULL on rows queued before
# epochs: their number is their id.
_CREATE = (
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        payload BLOB NOT NULL,
        created REAL NOT NULL,
        epoch TEXT NOT NULL DEFAULT '',
        seq INTEGER,
        sent REAL NOT NULL DEFAULT -0.5
    )""",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_MIGRATE = (
    # Schema only: the rows stay where they are, so an outbox that filled its disk before
    # the upgrade needs little room to migrate.
    "DROP INDEX IF EXISTS outbox_by_channel",
    "ALTER TABLE outbox RENAME COLUMN seq TO id",
    "ALTER TABLE outbox ADD COLUMN epoch TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE outbox ADD COLUMN seq INTEGER",
    "ALTER TABLE outbox ADD COLUMN sent REAL NOT NULL DEFAULT -0.5",
    "UPDATE counters SET value = 1 WHERE name = 'next_seq'",
)
_COMPLETE = (
    "CREATE UNIQUE INDEX IF NOT EXISTS outbox_by_seq ON outbox (epoch, seq) WHERE seq IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (channel, id) WHERE sent < 0",
    "CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent, id) WHERE sent >= 0",
    "CREATE INDEX IF NOT EXISTS outbox_sent_by_channel ON outbox (channel, id) WHERE sent >= 0",
    "CREATE INDEX IF NOT EXISTS outbox_by_age ON outbox (created)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT OR IGNORE INTO counters VALUES ('next_seq', 1), ('dropped', 0), ('released', 0)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_COLUMNS = "id, epoch, coalesce(seq, id), channel, payload, created"
_THE_RUN = "id BETWEEN ? AND ? AND epoch = ? AND coalesce(seq, id) - id = ?"
"""Consecutive entries, each its id with its number: ids of deleted rows can be handed
out again, to a message with a later number. A run is entries of consecutive ids whose
numbers are their ids plus one offset, so one statement names each of them exactly."""
_MARK_RUN = f"UPDATE outbox SET sent = ? WHERE {_THE_RUN}"  # noqa: S608 - fixed text
_FORGET_RUN = f"DELETE FROM outbox WHERE {_THE_RUN}"  # noqa: S608 - fixed text
_CONFIRMED_PIECE = (
    "SELECT count(*), max(seq), max(sent), min(id), max(id) FROM (SELECT seq, sent, id"
    " FROM outbox WHERE epoch = ? AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?)"
)
"""How many rows of a confirmed range one write forgets (at most the limit), the last
number among them, the latest time any of them was marked sent on disk, and their first
and last row (within an epoch, rows and numbers go up together)."""
_FORGET_PIECE = "DELETE FROM outbox WHERE epoch = ? AND seq BETWEEN ? AND ?"

_CHANNELS = {channel.value: channel for channel in Channel}
"""A row's channel from its text, without the enum's own lookup for each row."""

_ROW_OVERHEAD = 128
"""Bytes a row costs beside its payload (record header, four index entries): what a drop
is estimated to free. The bound itself is checked on pages actually in use."""
_MARKS_HELD = 16384
"""Send marks held in memory at most (edge_agent/send_marks.py): four rounds of a drain,
a few megabytes; past them the oldest are written."""
_ROWS_PER_WRITE = 8
"""Rows one transaction drops, marks or forgets at most where room is short: its log
stays a few dozen pages."""
_ROWS_PER_ROOMY_WRITE = 4096
"""The same with room to spare (a full-size log budget): a drained backlog is marked and
forgotten a window at a time, not eight rows at a time."""
_ROOMY_WAL_FRAMES = 256
_WAL_FRAME_OVERHEAD = 24
_WAL_HEADER = 32
_TXN_FRAMES = 16
"""Write-ahead log frames one transaction may add after the checkpoint point."""
_BALLAST_MAX = 256 * 1024


class Entry(NamedTuple):
    """A message as the uplink sends it. A named tuple: a drain makes a hundred
    thousand of them, and a frozen dataclass costs several times as much to build."""

    id: int
    """The row, in send order: what `sent` names."""
    epoch: str
    """"" for a message queued before epochs; its payload has none."""
    seq: int
    channel: Channel
    payload: bytes
    created: float
    resent: bool = False
    """Sent before and not confirmed: going out again."""


def _is_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL, extended or not; errors Python raises itself carry no code."""
    return int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF == sqlite3.SQLITE_FULL


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class Outbox:
    def __init__(
        self,
        path: Path,
        limits: OutboxSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._wal = path.with_name(f"{path.name}-wal")
        self._ballast = path.with_name(f"{path.name}.ballast")
        self._limits = limits or OutboxSettings()
        self._clock = clock
        self._max_bytes = int(self._limits.max_mb * 1e6)
        self._keep_free = int(self._limits.keep_free_mb * 1e6)
        self._ballast_size = min(_BALLAST_MAX, self._keep_free // 2)
        self._ballast_held = _file_size(self._ballast)
        self._wal_frames = 0
        self._wal_budget = 0
        self._disk_cap = sys.maxsize  # bytes the database file may take on this disk
        self._leased: set[int] = set()  # ids of what the uplink holds
        self._marks = SendMarks()  # first sends the broker acknowledged, not yet on disk
        self._confirmed_leased: set[int] = set()  # what the uplink holds, gone already
        self._deleted_in_write: list[int] = []  # by the write under way
        # When the newest confirmed message was sent: what was sent before it and is
        # still unconfirmed did not reach the collector.
        self._confirmed_after = -1.0
        # The same for confirmations heard at least `resend_after_s` ago: what was sent
        # with them and is still unconfirmed did not reach the collector either. Those
        # heard since, as (heard, sent), the sent times increasing.
        self._confirmed_through = -1.0
        self._heard: deque[tuple[float, float]] = deque()
        self._lost = 0  # messages the disk had no room for, not yet counted on it
        self._full = False  # in a disk-full episode, logged once
        self._lost_in_episode = 0
        self.changed = asyncio.Event()
        self._db = self._open()
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        self._page_size = int(page_size)
        self._set_up()
        # Sized now, not at the first append: a backlog drained after a restart is marked
        # and forgotten before anything new is appended.
        self._size_wal(self._room(self._free_bytes()))
        (epoch,) = self._db.execute("SELECT value FROM meta WHERE name = 'epoch'").fetchone()
        self.epoch: str = epoch

    def _open(self) -> sqlite3.Connection:
        """Open the database; on a disk so full that SQLite cannot even make the log's
        index (after a clean stop it is gone), with the ballast's room."""
        try:
            return open_sqlite(self._path, group_read=True, synchronous_full=True)
        except sqlite3.OperationalError as exc:
            if not self._ballast_held or self._free_bytes() >= self._keep_free:
                raise
            self._emergency(exc, None)
        return open_sqlite(self._path, group_read=True, synchronous_full=True)

    def _set_up(self) -> None:
        """Create the tables, or migrate an outbox from before epochs. Nothing is written
        (not even a checkpoint, which would hold off the agent's writes) when the file is
        current, so a second handle (a technician's, a test's) changes nothing."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        self._upkeep()  # an agent from before epochs may have left a log of megabytes
        try:
            self._write(self._create_or_migrate, durable=True)
        except sqlite3.Error as exc:
            if not _is_full(exc):
                raise
            self._emergency(exc, self._db)
            # Without room for its tables the outbox cannot queue anything: this raises.
            self._write(self._create_or_migrate, durable=True)

    def _create_or_migrate(self) -> None:
        db = self._db
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return  # another handle got there first
        columns = {name for (name,) in db.execute("SELECT name FROM pragma_table_info('outbox')")}
        for statement in _MIGRATE if columns and "id" not in columns else _CREATE:
            db.execute(statement)
        for statement in _COMPLETE:
            db.execute(statement)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', ?)", (secrets.token_hex(8),))

    def append(self, channel: Channel, build: Callable[[int], WireModel]) -> int:
        """Commit the message `build(seq)` makes with the next sequence number; return it.
        What the bounds require beyond a few rows is dropped first, in transactions of its
        own; the rest in the message's, so the queue on disk stays inside them and the
        count of what was dropped is exact across power cuts.

        A full disk does not raise: if even after the emergency measures the message
        cannot be stored, its number is skipped and it is counted as dropped (on disk with
        the next message that can be). Anything else `build` or SQLite raises does, and
        then nothing is committed and no number is used."""
        self._upkeep()
        while self._over_bounds():
            if not self._write_despite_full(self._shed, durable=False):
                break  # nothing the policy may drop, or no room even for that

        def store() -> int:
            seq = self._next_seq()
            message = build(seq)
            if "epoch" in type(message).model_fields and getattr(message, "epoch", None) is None:
                message = message.model_copy(update={"epoch": self.epoch})
            payload = encode(message)
            room = self._room_for_pages()
            self._db.execute(
                "INSERT INTO outbox (channel, payload, created, epoch, seq) VALUES (?, ?, ?, ?, ?)",
                (channel.value, payload, self._clock(), self.epoch, seq),
            )
            self._count("next_seq", seq + 1)
            self._count("dropped", self._lost, add=True)
            self._make_room(room)
            return seq

        seq = self._write_despite_full(store, durable=True)
        if seq is None:
            seq = self._next_seq()
            self._lost += 1
            self._lost_in_episode += 1
            return seq
        self._lost = 0
        self.changed.set()
        return seq

    def _next_seq(self) -> int:
        (stored,) = self._db.execute("SELECT value FROM counters WHERE name='next_seq'").fetchone()
        return int(stored) + self._lost

    def _count(self, name: str, value: int, *, add: bool = False) -> None:
        if add and not value:
            return
        update = "value + ?" if add else "?"
        self._db.execute(f"UPDATE counters SET value = {update} WHERE name = ?", (value, name))  # noqa: S608 - fixed text

    def _upkeep(self) -> None:
        """Before a write: take the ballast back and end a disk-full episode once the
        filesystem has its reserve (and room for the log to grow) free again, size the
        write-ahead log to the room there is, and bring back a log a reader let grow."""
        free = self._free_bytes()
        wal = _file_size(self._wal)
        if free - max(0, self._wal_budget - wal) >= self._keep_free:
            if not self._ballast_held and self._ballast_size:
                self._make_ballast()
                free = self._free_bytes()
            if self._full:
                self._full = False
                log.warning(
                    "outbox: the disk has room again; %d message(s) could not be stored "
                    "meanwhile and are counted as dropped",
                    self._lost_in_episode,
                )
        self._size_wal(self._room(free))
        self._keep_wal_small()

    def _room(self, free: int) -> int:
        """Bytes the outbox's files may take now: its bound, or what it has on disk plus
        the free space beyond the reserve."""
        on_disk = _file_size(self._path) + _file_size(self._wal)
        return min(self._max_bytes, on_disk + free + self._ballast_held - self._keep_free)

    def _size_wal(self, room: int) -> None:
        """Checkpoint after a sixteenth of the room (at least 4, at most 256 pages), and
        truncate the log to that plus one transaction's frames when SQLite starts it over."""
        frame = self._page_size + _WAL_FRAME_OVERHEAD
        frames = max(4, min(_ROOMY_WAL_FRAMES, room // 16 // frame))
        if frames == self._wal_frames:
            return
        self._wal_frames = frames
        self._wal_budget = _WAL_HEADER + (frames + _TXN_FRAMES) * frame
        self._db.execute(f"PRAGMA wal_autocheckpoint = {frames}")
        self._db.execute(f"PRAGMA journal_size_limit = {self._wal_budget}")

    def _keep_wal_small(self) -> None:
        """Truncate a write-ahead log grown past its budget (by a transaction larger than
        usual, or while a reader held it): SQLite would keep the file that size until the
        next write starts the log over."""
        if _file_size(self._wal) > self._wal_budget:
            self._truncate_wal(self._db)

    @staticmethod
    def _truncate_wal(db: sqlite3.Connection) -> None:
        """Checkpoint and truncate the write-ahead log, if no reader holds it. A failure
        (busy, or no room to grow the database) leaves the log as it was. It does not
        wait for readers: a truncating checkpoint waits out every one (a technician's
        `edge-agent status`), and the connection's busy timeout would stall the agent's
        event loop, its keepalives and its stop with it, for seconds each time."""
        (waits_ms,) = db.execute("PRAGMA busy_timeout").fetchone()
        db.execute("PRAGMA busy_timeout = 0")
        try:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(waits_ms)}")

    def _free_bytes(self) -> int:
        stats = os.statvfs(self._path.parent)
        return stats.f_bavail * stats.f_frsize

    def _make_ballast(self) -> None:
        """Allocate the ballast for real (not a sparse file), or leave none."""
        try:
            fd = os.open(self._ballast, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.posix_fallocate(fd, 0, self._ballast_size)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self._ballast.unlink()
            return
        self._ballast_held = self._ballast_size

    def _room_for_pages(self) -> int:
        """Bytes the database's pages in use may take, inside the caller's transaction:
        `max_mb` less the write-ahead log's share, and no more than the database file
        holds plus the filesystem's free space beyond the reserve, the log's growth and
        pages the next checkpoint will add to the file."""
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        file_bytes = int(pages) * self._page_size
        wal = _file_size(self._wal)
        wal_need = max(wal, self._wal_budget)
        unwritten = max(0, file_bytes - _file_size(self._path))
        spare = (
            self._free_bytes() + self._ballast_held - self._keep_free - (wal_need - wal) - unwritten
        )
        if spare >= 0:
            self._disk_cap = file_bytes + spare
        else:
            # Short of the reserve: no growth, but no shrinking either, since pages freed
            # stay in the file and would give nobody room. Not the file's current size,
            # though: a message stored before the drops freed pages for it grows the file
            # by its own pages, once (later ones reuse what the drops freed), and the
            # cap must not ratchet up with it; that growth shows as less free space, so
            # the cap it left stays put.
            self._disk_cap = min(self._disk_cap, file_bytes)
        return min(self._max_bytes - wal_need, self._disk_cap)

    def _pages_in_use(self) -> int:
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (free,) = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(pages - free) * self._page_size

    def _over_bounds(self) -> bool:
        """Whether there is anything to shed, read without a write transaction."""
        too_old = self._clock() - self._limits.max_age_h * 3600
        old = self._db.execute("SELECT 1 FROM outbox WHERE created < ? LIMIT 1", (too_old,))
        return old.fetchone() is not None or self._pages_in_use() > self._room_for_pages()

    def _shed(self) -> int:
        """At most a few rows of what the bounds require, in the caller's transaction;
        how many. Before an append, so a large backlog (a bound lowered across a restart,
        a box off for longer than `max_age_h`) never makes one transaction too large for
        the room its log has."""
        return self._make_room(self._room_for_pages(), most=_ROWS_PER_WRITE)

    def _make_room(self, room: int, most: int = sys.maxsize) -> int:
        """Drop, inside the caller's transaction, what is older than `max_age_h` and what
        the pages in use exceed `room` by, up to `most` rows; never a message the uplink
        holds. Counts them, the never-sent ones as dropped and the sent ones as released,
        and returns how many."""
        too_old = self._clock() - self._limits.max_age_h * 3600
        victims: dict[int, bool] = {}
        with contextlib.closing(
            self._db.execute("SELECT id, sent >= 0 FROM outbox WHERE created < ?", (too_old,))
        ) as rows:
            for row, was_sent in rows:
                if len(victims) == most:
                    break
                if row not in self._leased:
                    victims[row] = bool(was_sent) or row in self._marks
        self._delete(victims)
        while (
            len(victims) < most
            and (excess := self._pages_in_use() - room) > 0
            and (more := self._choose(excess, most - len(victims)))
        ):
            self._delete(more)
            victims |= more
        released = sum(victims.values())
        self._count("dropped", len(victims) - released, add=True)
        self._count("released", released, add=True)
        return len(victims)

    def _choose(self, excess: int, most: int) -> dict[int, bool]:
        """Up to `most` rows estimated to free `excess` bytes, by policy: never-sent
        messages first, in `drop_order` and `drop_within`; only then sent ones."""
        order = "ASC" if self._limits.drop_within == "oldest" else "DESC"
        chosen: dict[int, bool] = {}
        floors = self._marks.floors()
        for was_sent in (False, True):
            # Marked sent on disk, or here: unsent on disk and at or below the channel's
            # highest mark (edge_agent/send_marks.py).
            state = "(sent >= 0 OR id <= ?)" if was_sent else "sent < 0 AND id > ?"
            for channel in self._limits.drop_order:
                query = (
                    f"SELECT id, length(payload) FROM outbox"  # noqa: S608 - fixed text
                    f" WHERE channel = ? AND {state} ORDER BY id {order}"
                )
                floor = floors.get(Channel(channel), 0)
                with contextlib.closing(self._db.execute(query, (channel, floor))) as rows:
                    for row, size in rows:
                        if row in self._leased:
                            continue
                        chosen[row] = was_sent
                        excess -= size + _ROW_OVERHEAD
                        if excess <= 0 or len(chosen) == most:
                            return chosen
        return chosen

    def _chunk_size(self) -> int:
        """Rows one write transaction takes: few where room is short."""
        roomy = self._wal_frames >= _ROOMY_WAL_FRAMES and not self._full
        return _ROWS_PER_ROOMY_WRITE if roomy else _ROWS_PER_WRITE

    def _chunks(self, items: Sequence[_T]) -> Iterable[Sequence[_T]]:
        """`items` in groups one write transaction takes."""
        size = self._chunk_size()
        return (items[i : i + size] for i in range(0, len(items), size))

    def _delete(self, rows: Iterable[int]) -> None:
        """Delete rows inside the caller's write; their send marks go when it commits."""
        rows = list(rows)
        self._db.executemany("DELETE FROM outbox WHERE id = ?", ((row,) for row in rows))
        self._deleted_in_write += rows

    def _write(self, work: Callable[[], _T], *, durable: bool) -> _T:
        """`work` in one write transaction. A failure rolls back unless SQLite already did
        (it may, after SQLITE_FULL), so the original error is what the caller sees."""
        db = self._db
        if not durable:
            # Losing a mark, a deletion or a drop with its count to a power cut only means
            # a message is sent again, a duplicate the collector counts: no fsync needed.
            db.execute("PRAGMA synchronous=NORMAL")
        self._deleted_in_write = []
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            if not durable:
                db.execute("PRAGMA synchronous=FULL")
        self._marks.forget(self._deleted_in_write)
        return result

    def _write_despite_full(self, work: Callable[[], _T], *, durable: bool) -> _T | None:
        """`work` in a write transaction; on a full disk, once more after the emergency
        measures, and None if there is still no room."""
        for attempt in range(2):
            try:
                result = self._write(work, durable=durable)
            except sqlite3.Error as exc:
                if not _is_full(exc):
                    raise
                if attempt == 0:
                    self._emergency(exc, self._db)
                continue
            self._keep_wal_small()
            return result
        return None

    def _emergency(self, exc: sqlite3.Error, db: sqlite3.Connection | None) -> None:
        """The disk filled despite the bounds: release the ballast and truncate the
        write-ahead log, so what is tried again has room to drop by policy."""
        if not self._full:
            self._full = True
            self._lost_in_episode = 0
            log.error(
                "outbox: %s: %d bytes free for %s, though it keeps %d free for others; "
                "releasing its ballast and dropping by policy, a message that still "
                "cannot be stored is counted as dropped",
                exc,
                self._free_bytes(),
                self._path,
                self._keep_free,
            )
        if self._ballast_held:
            with contextlib.suppress(FileNotFoundError):
                self._ballast.unlink()
            self._ballast_held = 0
        if db is not None:
            self._truncate_wal(db)

    def _resend_through(self) -> float:
        """The latest send time at which an unconfirmed message is due again: sent
        `resend_after_s` ago or more, and before the newest confirmed message or with one
        confirmed `resend_after_s` ago or more."""
        now = self._clock()
        settled = now - self._limits.resend_after_s
        while self._heard and self._heard[0][0] <= settled:
            self._confirmed_through = self._heard.popleft()[1]
        before_newest = math.nextafter(self._confirmed_after, -math.inf)
        return min(settled, max(self._confirmed_through, before_newest))

    def peek(self, limit: int, max_bytes: int = sys.maxsize) -> list[Entry]:
        """Up to `limit` messages due to be sent, in send order, no more than `max_bytes`
        of payload (at least one): those never sent, and those sent but unconfirmed for
        longer than `resend_after_s` when, since this outbox was opened, a message sent
        after them has been confirmed, or one sent with them `resend_after_s` ago or
        more. They are now held by the uplink, until the next peek: the bounds never drop
        a message it may be sending."""
        db = self._db
        due = self._resend_through()
        self._write_marks(self._marks.taken_by(due))  # due again only once on disk
        floors = self._marks.floors()
        past_marks = 0 if floors or not self._marks else len(self._marks)
        resends = [
            row
            for (row,) in db.execute(
                "SELECT id FROM outbox WHERE sent >= 0 AND sent <= ? ORDER BY sent, id LIMIT ?",
                (due, limit),
            )
        ]
        # One stream in send order per channel (an index range: sent rows are never
        # scanned) and one of what goes out again, merged, each read only as far as the
        # merge takes it: no payload is read past the limit.
        streams = [
            db.execute(
                f"SELECT {_COLUMNS}, 0 FROM outbox"  # noqa: S608 - fixed text
                " WHERE channel = ? AND sent < 0 AND id > ? ORDER BY id LIMIT ?",
                (channel.value, floors.get(channel, 0), limit + past_marks),
            )
            for channel in Channel
        ]
        if resends:
            streams.append(
                db.execute(
                    f"SELECT {_COLUMNS}, 1 FROM outbox"  # noqa: S608 - fixed text
                    f" WHERE id IN ({','.join('?' * len(resends))}) ORDER BY id",
                    resends,
                )
            )
        entries: list[Entry] = []
        total = 0
        try:
            heads = [(first, stream) for stream in streams if (first := stream.fetchone())]
            # A drain is nearly always one channel: then no merge, which costs a step of
            # its own for every row.
            rows = (
                itertools.chain([heads[0][0]], heads[0][1])
                if len(heads) == 1
                else heapq.merge(*(itertools.chain([first], stream) for first, stream in heads))
            )
            for row, epoch, seq, channel, payload, created, resent in rows:
                if len(entries) == limit or (entries and total + len(payload) > max_bytes):
                    break
                if row in self._marks:  # below a floor not trusted: sent, awaiting
                    continue
                entries.append(
                    Entry(row, epoch, seq, _CHANNELS[channel], payload, created, bool(resent))
                )
                total += len(payload)
        finally:
            for stream in streams:
                stream.close()
        self._leased = {entry.id for entry in entries}
        self._confirmed_leased = set()
        return entries

    def sent(self, entries: Iterable[Entry]) -> None:
        """The broker acknowledged these. They wait for the collector's confirmation,
        except messages from before epochs and all of them with `delete_on: broker_ack`,
        which nothing would confirm: those are forgotten now. A first send is marked in
        memory (edge_agent/send_marks.py), and on disk only if it is still here when that
        matters: before it could be due again, past `_MARKS_HELD`, at `close`. What goes
        out again is marked on disk at once. One statement per run of consecutive entries
        (a window is nearly always one), not one per message."""
        entries = list(entries)
        now = self._clock()
        forget = self._limits.delete_on == "broker_ack"
        # A confirmation may overtake the broker's acknowledgement, and a row's id go to
        # the next message: what is gone is not marked.
        written: list[Entry] = []
        held: list[Entry] = []
        for e in entries:
            (written if forget or not e.epoch or e.resent else held).append(e)
        self._marks.add(
            (e.id, Mark(now, e.channel, e.epoch, e.seq))
            for e in held
            if e.id not in self._confirmed_leased
        )
        for chunk in self._chunks(written):

            def mark(chunk: Sequence[Entry] = chunk) -> bool:
                for first, last, leaves in _runs(chunk, lambda e: forget or not e.epoch):
                    run = (first.id, last.id, first.epoch, first.seq - first.id)
                    if leaves:
                        self._db.execute(_FORGET_RUN, run)
                    else:
                        self._db.execute(_MARK_RUN, (now, *run))
                return True

            # On a disk too full even for this they stay unsent, and go out again: below
            # a floor, perhaps.
            if not self._write_despite_full(mark, durable=False):
                self._marks.distrust()
        if len(self._marks) > _MARKS_HELD:
            self._write_marks(self._marks.oldest(len(self._marks) - _MARKS_HELD))
        self._leased.difference_update(e.id for e in entries)

    def _write_marks(self, marks: Sequence[tuple[int, Mark]]) -> None:
        """Put these send marks on disk and forget them here. On a disk too full even for
        this they are forgotten all the same: the messages go out again, as they would
        have once due, a duplicate rather than a message that waits for room."""
        for chunk in self._chunks(marks):

            def mark(chunk: Sequence[tuple[int, Mark]] = chunk) -> bool:
                self._db.executemany(
                    "UPDATE outbox SET sent = ? WHERE id = ? AND epoch = ? AND seq = ?",
                    ((m.sent, row, m.epoch, m.seq) for row, m in chunk),
                )
                return True

            if not self._write_despite_full(mark, durable=False):
                self._marks.distrust()
            self._marks.forget(row for row, _ in chunk)

    def confirm(self, epoch: str, ranges: Iterable[tuple[int, int]]) -> int:
        """The collector committed these sequence numbers (inclusive ranges) of `epoch`:
        forget them, sent or not. Returns how many were here; numbers or an epoch this
        outbox does not hold are no error, only 0.

        A range is forgotten a piece at a time, each piece one statement in a write of
        its own: the numbers from the piece's first through the last of as many rows as
        one write takes (`_chunk_size`, a few where room is short), found on the (epoch,
        seq) index. One statement per piece, not one per message, is what lets a drain
        keep up with the collector; pieces no larger than any other write keep each
        transaction's log inside what the bound leaves it, as on a disk short of room,
        and a range as wide as the wire allows costs only the rows it finds."""
        newest = -1.0
        forgotten = 0
        for first, last in ranges:
            while first <= last:
                found, through, sent, low, high = self._db.execute(
                    _CONFIRMED_PIECE, (epoch, first, last, self._chunk_size())
                ).fetchone()
                if not found:
                    break
                newest = max(newest, sent, self._marks.newest_between(low, high))

                def forget(first: int = first, through: int = through) -> int:
                    return self._db.execute(_FORGET_PIECE, (epoch, first, through)).rowcount

                # On a disk too full even for this they stay, go out again and are
                # confirmed again.
                gone = self._write_despite_full(forget, durable=False)
                if gone is not None:
                    self._marks.forget_between(low, high)
                    self._confirmed_leased.update(r for r in self._leased if low <= r <= high)
                forgotten += gone or 0
                first = through + 1
        if newest > self._confirmed_after:
            self._confirmed_after = newest
            self._heard.append((self._clock(), newest))
        return forgotten

    def depth(self) -> int:
        """Messages queued, sent-but-unconfirmed ones included."""
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def unconfirmed(self) -> int:
        """Messages the broker acknowledged that the collector has not confirmed yet."""
        (count,) = self._db.execute("SELECT count(*) FROM outbox WHERE sent >= 0").fetchone()
        return int(count) + len(self._marks)

    def size_bytes(self) -> int:
        """What `max_mb` bounds: database pages in use plus the write-ahead log."""
        return self._pages_in_use() + _file_size(self._wal)

    def dropped(self) -> int:
        """Messages dropped that certainly never left the box, since the outbox was
        created: by the bounds, or for want of disk. The collector sees them as gaps."""
        (count,) = self._db.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()
        return int(count) + self._lost

    def released(self) -> int:
        """Messages sent but unconfirmed that the bounds dropped: the store may hold them
        or not, so they are counted apart from `dropped`."""
        (count,) = self._db.execute("SELECT value FROM counters WHERE name='released'").fetchone()
        return int(count)

    def last_seq(self) -> int:
        """The latest sequence number of the current epoch handed out (0 before the
        first message)."""
        return self._next_seq() - 1

    def close(self) -> None:
        """Write the send marks held in memory, so what waits for confirmation is not
        sent again at the next start, and close."""
        try:
            self._write_marks(self._marks.taken_by(math.inf))
        except sqlite3.Error as exc:
            log.warning(
                "outbox: %d send mark(s) not written (%s): sent again", len(self._marks), exc
            )
        finally:
            self._db.close()


def _runs(
    entries: Iterable[Entry], leaves: Callable[[Entry], bool]
) -> Iterable[tuple[Entry, Entry, bool]]:
    """First and last entry of each run (see `_THE_RUN`) in `entries`, and whether its
    entries leave the outbox (`leaves`) rather than wait for confirmation."""
    run: tuple[Entry, Entry, bool] | None = None
    for entry in entries:
        gone = leaves(entry)
        if run is not None:
            first, last, run_leaves = run
            if (
                entry.id == last.id + 1
                and entry.epoch == first.epoch
                and entry.seq - entry.id == first.seq - first.id
                and gone == run_leaves
            ):
                run = (first, entry, gone)
                continue
            yield run
        run = (entry, entry, gone)
    if run is not None:
        yield run
