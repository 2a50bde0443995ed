"""Opening the SQLite files both processes keep (outbox, store, spool, registry, police
database, users) the same way.

Autocommit mode (`isolation_level=None`) so every transaction is an explicit BEGIN the
code can see; WAL so readers (`edge-agent status`, the CLI) never block the writer; one
connection shared across threads, each module serialising its own use of it.

Every one of these files holds something no other local account may read (plates and
their crops, token hashes, broker-bound messages), so each is created 0600, or 0640 where
a group reads it, whatever the umask (`iotruntime/private_files.py`). SQLite gives the
`-wal` and `-shm` files it makes the database file's own mode; stale ones from an older
version are brought down like the database.
"""

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from iotruntime.private_files import (
    create_private_file,
    make_private_dirs,
    withdraw_world_access,
)

COMPANIONS = ("-wal", "-shm")
"""The files SQLite keeps beside a database in WAL mode, named after it."""


def open_sqlite(
    path: Path,
    *,
    group_read: bool = False,
    synchronous_full: bool = False,
    busy_timeout_s: float | None = None,
) -> sqlite3.Connection:
    """`group_read` for a file another account of the owner's group reads (the outbox, for
    a technician's `edge-agent status`): 0640 instead of 0600, its directory 0750.

    `synchronous_full` for files whose commit is a promise to someone (an outbox entry,
    an acknowledged batch): the commit survives a power cut, not only a crash."""
    make_private_dirs(path.parent, group_read=group_read)
    create_private_file(path, group_read=group_read)
    for suffix in COMPANIONS:
        withdraw_world_access(path.with_name(path.name + suffix), group_read=group_read)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    if synchronous_full:
        db.execute("PRAGMA synchronous=FULL")
    if busy_timeout_s is not None:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    return db


@contextlib.contextmanager
def write_transaction(
    db: sqlite3.Connection, lock: "threading.Lock | None" = None
) -> Iterator[sqlite3.Connection]:
    """One write transaction, committed when the block ends and rolled back if it raises;
    under `lock` for a connection shared across threads. IMMEDIATE takes the write lock
    at the start, so two writers never both read and then collide at their first write."""
    with lock if lock is not None else contextlib.nullcontext():
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
