"""The device registry: every provisioned box, what kind it is, its name and where it
stands, imported from the bundles `edge-agent provision` writes.

The wire carries only ids; people need places. Alerts take a pole's name and coordinates
from here, and the broker's configuration (credentials, ACLs) is generated from it.
Importing a bundle again replaces the entry, so a re-provisioned box is simply imported
once more.

The registry also keeps what keeps the broker honest beside the boxes: the names
`collector broker-config` gave the operations center's own broker users (a bundle naming a
box after one is refused), and the credentials of revoked boxes, which stay revoked: their
certificates' serials go into the device CA's revocation list, and a bundle bringing a
revoked credential back is refused.
"""

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from collector.i18n import services
from iotruntime.configfile import ConfigError, load_model
from iotruntime.i18n import day, process_language
from iotruntime.registration import BoxKind, Credential, Location, Registration
from iotruntime.sqlite_files import open_sqlite, write_transaction

_ = services.gettext
SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, site TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    lat REAL, lon REAL, credential TEXT, imported TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    device TEXT NOT NULL, credential TEXT NOT NULL, serial TEXT, revoked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS broker_users (name TEXT PRIMARY KEY, role TEXT NOT NULL);
"""
# Registries made before revocation have no `revoked` column; it is added on opening.
REVOKED_COLUMN = "ALTER TABLE devices ADD COLUMN revoked TEXT"
COLUMNS = "device, site, kind, name, lat, lon, credential, imported, revoked"


class RefusedError(ValueError):
    """A bundle the registry will not take, with the key of the bundle at fault."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class RegisteredDevice:
    device: str
    site: str
    kind: BoxKind
    name: str
    location: Location | None
    credential: Credential | None
    imported: datetime
    revoked: datetime | None = None


@dataclass(frozen=True)
class Revocation:
    device: RegisteredDevice
    serial: int | None  # the certificate's, for the CRL; None for a password


class Registry:
    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path)
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(devices)")}
        if "revoked" not in columns:
            self._db.execute(REVOKED_COLUMN)
        self._lock = threading.Lock()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction, under the lock: a revocation is marked and kept together."""
        with write_transaction(self._db, self._lock) as db:
            yield db

    def import_file(self, path: Path, replace: bool = False) -> tuple[RegisteredDevice, bool]:
        """Register the bundle at `path` (a ConfigError names what is wrong with it);
        returns the entry and whether it is new."""
        bundle = load_model(path, Registration)
        try:
            return self.register(bundle, replace)
        except RefusedError as exc:
            raise ConfigError(path, [(exc.key, exc.reason)]) from None

    def register(
        self, bundle: Registration, replace: bool = False
    ) -> tuple[RegisteredDevice, bool]:
        """Register a bundle, updating the box's entry; a revoked box comes back only
        with a new credential. RefusedError for a name the operations center uses on the
        broker, a revoked credential, or, unless `replace`, a bundle that would give a
        registered box another credential or kind: a bundle is a file passed by hand, and
        one forged for a box in service would take its place on the broker (or, as a
        camera pole, the right to publish plates)."""
        now = datetime.now(UTC)
        where = bundle.location
        credential = bundle.credential
        with self._lock:
            role = self._db.execute(
                "SELECT role FROM broker_users WHERE name = ?", (bundle.device,)
            ).fetchone()
            if role:
                raise RefusedError(
                    "device",
                    _("{device} is a {role}'s name on the broker, not a box's").format(
                        device=repr(bundle.device), role=role[0]
                    ),
                )
            if credential is not None:
                revoked = self._revoked_at(credential)
                if revoked is not None:
                    raise RefusedError(
                        "credential",
                        _(
                            "revoked on {day}: provision the box again for a new credential"
                            " (for a password, remove broker-password on the box first)"
                        ).format(day=day(revoked.date(), process_language())),
                    )
            held = self._db.execute(
                "SELECT kind, credential, revoked FROM devices WHERE device = ?", (bundle.device,)
            ).fetchone()
            new = held is None
            if held is not None and held[2] is None and not replace:
                _same_box(bundle, held[0], held[1])
            self._db.execute(
                f"INSERT OR REPLACE INTO devices ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",  # noqa: S608 - constant column list
                (
                    bundle.device,
                    bundle.site,
                    bundle.kind.value,
                    bundle.name,
                    where.lat if where else None,
                    where.lon if where else None,
                    credential.model_dump_json() if credential else None,
                    now.isoformat(),
                ),
            )
        entry = RegisteredDevice(
            bundle.device, bundle.site, bundle.kind, bundle.name, where, credential, now
        )
        return entry, new

    def _revoked_at(self, credential: Credential) -> datetime | None:
        """When this very credential (same password entry or certificate) was revoked."""
        for text, revoked in self._db.execute("SELECT credential, revoked FROM revocations"):
            old = Credential.model_validate_json(text)
            same_password = old.password_entry is not None and (
                old.password_entry == credential.password_entry
            )
            same_certificate = old.certificate_sha256 is not None and (
                old.certificate_sha256 == credential.certificate_sha256
            )
            if same_password or same_certificate:
                return datetime.fromisoformat(revoked)
        return None

    def revoke(self, device: str) -> Revocation:
        """Take the box off the broker: marked revoked (its entry stays, for the names of
        past alerts), its credential kept as revoked. Revoking again changes nothing.
        KeyError for a device the registry does not know."""
        now = datetime.now(UTC)
        with self._writing() as db:
            row = db.execute(
                f"SELECT {COLUMNS} FROM devices WHERE device = ?",  # noqa: S608 - constant column list
                (device,),
            ).fetchone()
            if row is None:
                raise KeyError(device)
            entry = _device(row)
            credential = entry.credential
            serial = _serial(credential)
            if entry.revoked is not None:
                return Revocation(entry, serial)
            db.execute("UPDATE devices SET revoked = ? WHERE device = ?", (now.isoformat(), device))
            if credential is not None:
                db.execute(
                    "INSERT INTO revocations VALUES (?, ?, ?, ?)",
                    (
                        device,
                        credential.model_dump_json(),
                        None if serial is None else f"{serial:x}",
                        now.isoformat(),
                    ),
                )
        return Revocation(replace(entry, revoked=now), serial)

    def revoked_certificates(self) -> list[tuple[int, datetime]]:
        """Every revoked certificate's serial and when it was revoked, for the CRL."""
        with self._lock:
            rows = self._db.execute(
                "SELECT serial, revoked FROM revocations WHERE serial IS NOT NULL ORDER BY revoked"
            ).fetchall()
        return [(int(serial, 16), datetime.fromisoformat(when)) for serial, when in rows]

    def reserve(self, names: Mapping[str, str]) -> None:
        """Record the operations center's broker users (name to role: collector,
        console), so that no bundle registers a box under one of them."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO broker_users VALUES (?, ?)", list(names.items())
            )

    def get(self, device: str) -> RegisteredDevice | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM devices WHERE device = ?",  # noqa: S608 - constant column list
                (device,),
            ).fetchone()
        return _device(row) if row else None

    def all(self) -> list[RegisteredDevice]:
        """Every registered box, revoked ones included (`revoked` says which)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM devices ORDER BY device"  # noqa: S608 - constant column list
            ).fetchall()
        return [_device(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _same_box(bundle: Registration, kind: str, credential: str | None) -> None:
    """RefusedError when the bundle would change what a registered box in service is or
    how it signs in."""
    offered = bundle.credential.model_dump_json() if bundle.credential else None
    if offered != credential:
        raise RefusedError(
            "credential",
            _(
                "{device} is registered with another credential; import with --replace"
                " if the box was provisioned anew (a lost or stolen box: revoke it first)"
            ).format(device=bundle.device),
        )
    if bundle.kind.value != kind:
        raise RefusedError(
            "kind",
            _(
                "{device} is registered as {kind}, not {offered};"
                " import with --replace to change what it is"
            ).format(device=bundle.device, kind=kind, offered=bundle.kind.value),
        )


def _serial(credential: Credential | None) -> int | None:
    if credential is None or credential.certificate is None:
        return None
    # Imported here: only revocation needs `cryptography`, and alerts open the registry.
    from iotruntime.certificates import serial_number

    return serial_number(credential.certificate.encode())


Row = tuple[str, str, str, str, float | None, float | None, str | None, str, str | None]


def _device(row: Row) -> RegisteredDevice:
    device, site, kind, name, lat, lon, credential, imported, revoked = row
    location = Location(lat=lat, lon=lon) if lat is not None and lon is not None else None
    return RegisteredDevice(
        device,
        site,
        BoxKind(kind),
        name,
        location,
        Credential.model_validate_json(credential) if credential else None,
        datetime.fromisoformat(imported),
        datetime.fromisoformat(revoked) if revoked else None,
    )
