"""Opening the SQLite files both processes keep (outbox, store, spool, registry, police
database, users) the same way.

Autocommit mode (`isolation_level=None`) so every transaction is an explicit BEGIN the
code can see; WAL so readers (`edge-agent status`, the CLI) never block the writer; one
connection shared across threads, each module serialising its own use of it.
"""

import sqlite3
from pathlib import Path


def open_sqlite(
    path: Path, *, synchronous_full: bool = False, busy_timeout_s: float | None = None
) -> sqlite3.Connection:
    """`synchronous_full` for files whose commit is a promise to someone (an outbox entry,
    an acknowledged batch): the commit survives a power cut, not only a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    if synchronous_full:
        db.execute("PRAGMA synchronous=FULL")
    if busy_timeout_s is not None:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    return db
