"""Remote configuration from the operations center: the signing key, the signed push, and
the audit trail of every push and how it ended.

The key is an Ed25519 pair the center makes once (`collector devices config key`), as it
makes the device CA: the private key signs pushes and never leaves the center, the public
key goes onto each box (`collector_key` in its config). Ed25519 because its keys and
signatures are small and fixed, it has no parameters to get wrong, and `cryptography`
(already what the CAs are made with) verifies it on a Raspberry Pi in microseconds.

The collector does not validate the config: it may not import the edge agent
(docs/architecture.md), and the box is the judge anyway, with its own model, files and
sensors (edge_agent/remote_config.py). What it sends is bounded by the wire
(`MAX_CONFIG_CHARS`).

Every push is audited in the registry's database, the fleet's own, in a table triggers
make append-only, as the police audit log is: the push (who, which box, the config's
digest) before it is sent, so a push is on record even if the answer never comes, then its
outcome as the box reported it, or that none came.
"""

import hashlib
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from collector.i18n import services
from iotruntime.private_files import write_whole
from iotruntime.sqlite_files import open_sqlite, write_transaction
from iotwire.config_push import ConfigPush
from iotwire.messages import MAX_CONFIG_CHARS

_ = services.gettext
PRIVATE_KEY = "config-signing.key"
PUBLIC_KEY = "config-signing.pub"
NO_ANSWER = "no_answer"
PUSHED = "pushed"

SCHEMA = """
CREATE TABLE IF NOT EXISTS config_pushes (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, device TEXT NOT NULL,
    push TEXT NOT NULL, action TEXT NOT NULL, sha256 TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS config_pushes_no_update BEFORE UPDATE ON config_pushes
    BEGIN SELECT RAISE(ABORT, 'the config push log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS config_pushes_no_delete BEFORE DELETE ON config_pushes
    BEGIN SELECT RAISE(ABORT, 'the config push log is append-only'); END;
"""


def make_signing_key(out: Path) -> tuple[Path, Path]:
    """Write a new key pair into `out`; never replaces one, since every box trusts it."""
    private, public = out / PRIVATE_KEY, out / PUBLIC_KEY
    if private.exists() or public.exists():
        raise ValueError(
            _("{folder} holds a config signing key already; it is never replaced here").format(
                folder=out
            )
        )
    key = Ed25519PrivateKey.generate()
    out.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    write_whole(private, pem, 0o600)
    pub = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    write_whole(public, pub, 0o644)
    return private, public


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The center's signing key; ValueError if the file holds another kind of key."""
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            _("{path}: not an Ed25519 private key (collector devices config key)").format(path=path)
        )
    return key


def config_push(device: str, text: str, by: str, rollback_after_s: float) -> ConfigPush:
    """A push of `text` to `device`, issued now, with a fresh nonce (which is also the
    command's id, so the audit trail, the box's record and its answer share one name)."""
    if len(text) > MAX_CONFIG_CHARS:
        raise ValueError(
            _("the config is over {most} characters, which the wire carries").format(
                most=MAX_CONFIG_CHARS
            )
        )
    return ConfigPush(
        device=device,
        issued=datetime.now(UTC),
        nonce=uuid.uuid4().hex,
        by=by,
        rollback_after_s=rollback_after_s,
        config=text,
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PushEvent:
    at: datetime
    actor: str
    device: str
    push: str
    action: str  # PUSHED, a PushOutcome value, or NO_ANSWER
    sha256: str
    detail: str


class PushLog:
    """The append-only trail of pushes, in the registry's database file."""

    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def record(self, actor: str, push: ConfigPush, action: str, detail: str = "") -> None:
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "INSERT INTO config_pushes (at, actor, device, push, action, sha256, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(),
                    actor,
                    push.device,
                    push.nonce,
                    action,
                    sha256(push.config),
                    detail,
                ),
            )

    def events(self, device: str | None = None) -> list[PushEvent]:
        where, args = ("WHERE device = ?", (device,)) if device else ("", ())
        rows: list[sqlite3.Row] = self._db.execute(
            "SELECT at, actor, device, push, action, sha256, detail FROM config_pushes"  # noqa: S608 - fixed clause, values bound
            f" {where} ORDER BY id",
            args,
        ).fetchall()
        return [
            PushEvent(datetime.fromisoformat(at), actor, dev, push, action, digest, detail)
            for at, actor, dev, push, action, digest, detail in rows
        ]

    def close(self) -> None:
        self._db.close()
