"""Who may use the API, and as what: one bearer token per user, with one role, until it
expires.

A token is 32 random bytes, shown once when the user is added; only its SHA-256 is kept.
A slow password hash buys nothing for a secret that long, and every request checks one.

A token expires, `DEFAULT_EXPIRY_DAYS` after it was issued unless the user was added with
another term, so one that leaked from a laptop or a script stops working by itself; an
expired user is added again for a new token. A database made before tokens expired gains
the `expires` column when opened; its tokens keep working, without an expiry, until revoked.

People at a browser sign in with a password instead (collector/api/passwords.py) and get a
session: a random id in an HttpOnly cookie, kept here as its SHA-256 like a token, ending
after `SESSION_HOURS` (a shift) or when the user is revoked or its token expires.
"""

import hashlib
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from collector.api.passwords import hashed, matches
from collector.i18n import web
from iotruntime.sqlite_files import open_sqlite, write_transaction

DEFAULT_EXPIRY_DAYS = 365
MAX_EXPIRY_DAYS = 3650
SESSION_HOURS = 12


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
    created TEXT NOT NULL, revoked TEXT, expires TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL, ends TEXT NOT NULL
);
"""
_COLUMNS = "name, role, created, revoked, expires"
Row = tuple[str, str, str, str | None, str | None]


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created: str
    revoked: str | None
    expires: datetime | None  # None: issued before tokens expired

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    @classmethod
    def of(cls, row: Row) -> "User":
        name, role, created, revoked, expires = row
        when = datetime.fromisoformat(expires) if expires else None
        return cls(name, Role(role), created, revoked, when)


class UserError(Exception):
    """A user that cannot be added or revoked, said in words the CLI prints as they are."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path)
        # The collector and a `collector users` command may open an old file at once: the
        # column is added by whichever takes the write lock first, and looked for under it.
        with self._writing():
            for statement in _SCHEMA.split(";"):
                self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(users)")}
            if "expires" not in columns:
                self._db.execute("ALTER TABLE users ADD COLUMN expires TEXT")
            if "password" not in columns:
                self._db.execute("ALTER TABLE users ADD COLUMN password TEXT")

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with write_transaction(self._db) as db:
            yield db

    def add(self, name: str, role: Role, expires_days: int = DEFAULT_EXPIRY_DAYS) -> str:
        """Create the user and return its token: the only time it is ever shown. A revoked
        or expired user gets a new token; an active one must be revoked first."""
        if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise UserError(
                web.gettext("a token expires after 1 to {most} days, not {days}").format(
                    most=MAX_EXPIRY_DAYS, days=expires_days
                )
            )
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._writing() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()  # noqa: S608
            existing = User.of(row) if row else None
            if existing and existing.revoked is None and not existing.expired(now):
                raise UserError(
                    web.gettext(
                        "user {name} is active; revoke it first to issue a new token"
                    ).format(name=repr(name))
                )
            db.execute(
                "INSERT OR REPLACE INTO users (name, role, token_sha256, created, revoked, expires)"
                " VALUES (?, ?, ?, ?, NULL, ?)",
                (
                    name,
                    role.value,
                    _digest(token),
                    now.isoformat(),
                    (now + timedelta(days=expires_days)).isoformat(),
                ),
            )
        return token

    def revoke(self, name: str) -> None:
        changed = self._db.execute(
            "UPDATE users SET revoked = ? WHERE name = ? AND revoked IS NULL",
            (datetime.now(UTC).isoformat(), name),
        ).rowcount
        if not changed:
            raise UserError(web.gettext("no active user {name}").format(name=repr(name)))
        self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def authenticate(self, token: str) -> User | None:
        """The user the token was issued to, expired or not (the caller says which), or
        None for a token never issued or revoked."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM users WHERE token_sha256 = ? AND revoked IS NULL",  # noqa: S608
            (_digest(token),),
        ).fetchone()
        return User.of(row) if row else None

    def set_password(self, name: str, password: str) -> None:
        """Give an active user a password for the browser sign-in; its sessions end."""
        digest = hashed(password)
        with self._writing() as db:
            changed = db.execute(
                "UPDATE users SET password = ? WHERE name = ? AND revoked IS NULL",
                (digest, name),
            ).rowcount
            if not changed:
                raise UserError(web.gettext("no active user {name}").format(name=repr(name)))
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def sign_in(self, name: str, password: str, now: datetime) -> tuple[User, str] | None:
        """A new session for the right password of an active user, with its id (shown
        once, to go in the cookie); None otherwise, whichever part was wrong."""
        row = self._db.execute(
            f"SELECT {_COLUMNS}, password FROM users WHERE name = ? AND revoked IS NULL",  # noqa: S608
            (name,),
        ).fetchone()
        right = matches(password, row[-1] if row else None)
        if row is None or not right:
            return None
        user = User.of(row[:-1])
        if user.expired(now):
            return None
        ends = now + timedelta(hours=SESSION_HOURS)
        if user.expires is not None:
            ends = min(ends, user.expires)
        session = secrets.token_urlsafe(32)
        with self._writing() as db:
            db.execute("DELETE FROM sessions WHERE ends <= ?", (now.isoformat(),))
            db.execute(
                "INSERT INTO sessions (id_sha256, name, created, ends) VALUES (?, ?, ?, ?)",
                (_digest(session), name, now.isoformat(), ends.isoformat()),
            )
        return user, session

    def in_session(self, session: str, now: datetime) -> User | None:
        """The user of a session still running, its user neither revoked nor expired."""
        row = self._db.execute(
            "SELECT u.name, u.role, u.created, u.revoked, u.expires FROM sessions s"
            " JOIN users u ON u.name = s.name"
            " WHERE s.id_sha256 = ? AND s.ends > ? AND u.revoked IS NULL",
            (_digest(session), now.isoformat()),
        ).fetchone()
        user = User.of(row) if row else None
        return user if user is not None and not user.expired(now) else None

    def sign_out(self, session: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_digest(session),))

    def all(self) -> list[User]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name")  # noqa: S608
        return [User.of(row) for row in rows]

    def close(self) -> None:
        self._db.close()
