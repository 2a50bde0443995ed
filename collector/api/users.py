"""Who may use the API, and as what: one bearer token per user, with one role.

A token is 32 random bytes, shown once when the user is added; only its SHA-256 is kept.
A slow password hash buys nothing for a secret that long, and every request checks one.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from iotruntime.sqlite_files import open_sqlite


class Role(StrEnum):
    OPS = "ops"
    POLICE = "police"
    ENV = "env"
    TECHNICIAN = "technician"


# Time series and device state are not personal data; plates (for the police) are.
TELEMETRY_READERS = frozenset({Role.OPS, Role.ENV, Role.TECHNICIAN})
# Compliance reports are the environmental officer's, and operations staff read them too.
EXPORT_READERS = frozenset({Role.ENV, Role.OPS})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL, revoked TEXT
);
"""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created: str
    revoked: str | None


class UserError(Exception):
    """A user that cannot be added or revoked, said in words the CLI prints as they are."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path)
        self._db.executescript(_SCHEMA)

    def add(self, name: str, role: Role) -> str:
        """Create the user and return its token: the only time it is ever shown."""
        token = secrets.token_urlsafe(32)
        added = self._db.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, NULL) ON CONFLICT (name) DO UPDATE SET"
            " role = excluded.role, token_sha256 = excluded.token_sha256,"
            " created = excluded.created, revoked = NULL WHERE users.revoked IS NOT NULL",
            (name, role.value, _digest(token), datetime.now(UTC).isoformat()),
        ).rowcount
        if not added:
            raise UserError(f"user {name!r} is active; revoke it first to issue a new token")
        return token

    def revoke(self, name: str) -> None:
        changed = self._db.execute(
            "UPDATE users SET revoked = ? WHERE name = ? AND revoked IS NULL",
            (datetime.now(UTC).isoformat(), name),
        ).rowcount
        if not changed:
            raise UserError(f"no active user {name!r}")

    def authenticate(self, token: str) -> User | None:
        row = self._db.execute(
            "SELECT name, role, created, revoked FROM users"
            " WHERE token_sha256 = ? AND revoked IS NULL",
            (_digest(token),),
        ).fetchone()
        return User(row[0], Role(row[1]), row[2], row[3]) if row else None

    def all(self) -> list[User]:
        rows = self._db.execute("SELECT name, role, created, revoked FROM users ORDER BY name")
        return [User(name, Role(role), created, revoked) for name, role, created, revoked in rows]

    def close(self) -> None:
        self._db.close()
