"""The police data's audit trail: who changed the watchlist, which alerts were raised,
delivered and acknowledged, and when.

Append-only is enforced by the database itself: triggers refuse every UPDATE and DELETE
on the table, so no code path, and no one with the application's access, can rewrite
history. It shares the police database file with the watchlist, so a change and its
record commit together.
"""

import csv
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, object]


def record(
    db: sqlite3.Connection,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, object] | None = None,
    at: datetime | None = None,
) -> None:
    """Add a record inside the caller's transaction."""
    db.execute(
        "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (
            (at or datetime.now(UTC)).isoformat(),
            actor,
            action,
            subject,
            json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        ),
    )


def records(
    db: sqlite3.Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
) -> list[AuditRecord]:
    clauses, args = [], []
    if since is not None:
        clauses.append("at >= ?")
        args.append(since.isoformat())
    if until is not None:
        clauses.append("at < ?")
        args.append(until.isoformat())
    if action is not None:
        clauses.append("action = ?")
        args.append(action)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(
        f"SELECT id, at, actor, action, subject, detail FROM audit {where} ORDER BY id",  # noqa: S608 - fixed clauses, values bound
        args,
    ).fetchall()
    return [
        AuditRecord(i, datetime.fromisoformat(at), actor, act, subject, json.loads(detail))
        for i, at, actor, act, subject, detail in rows
    ]


def write_csv(found: list[AuditRecord], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(("id", "at", "actor", "action", "subject", "detail"))
    for r in found:
        writer.writerow(
            (r.id, r.at.isoformat(), r.actor, r.action, r.subject, json.dumps(r.detail))
        )
