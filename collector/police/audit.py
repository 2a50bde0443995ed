"""The police data's audit trail: who changed the watchlist, which alerts were raised,
delivered and acknowledged, and when.

Append-only is enforced by the database itself: triggers refuse every UPDATE and DELETE
on the table (collector/police/database.py), so no code path, and no one with the
application's access, can rewrite history. A change and its record commit in one
transaction.
"""

import csv
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from collector.police.database import PoliceDb


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
    db: PoliceDb,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    subject: str | None = None,
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
    if subject is not None:
        clauses.append("subject = ?")
        args.append(subject)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.rows(
        f"SELECT id, at, actor, action, subject, detail FROM audit {where} ORDER BY id",  # noqa: S608 - fixed clauses, values bound
        args,
    )
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
