"""The device registry: every provisioned box, what kind it is, its name and where it
stands, imported from the bundles `edge-agent provision` writes.

The wire carries only ids; people need places. Alerts take a pole's name and coordinates
from here, and the broker's configuration (credentials, ACLs) is generated from it.
Importing a bundle again replaces the entry, so a re-provisioned box is simply imported
once more.
"""

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iotruntime.configfile import load_model
from iotruntime.registration import BoxKind, Credential, Location, Registration
from iotruntime.sqlite_files import open_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, site TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    lat REAL, lon REAL, credential TEXT, imported TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class RegisteredDevice:
    device: str
    site: str
    kind: BoxKind
    name: str
    location: Location | None
    credential: Credential | None
    imported: datetime


class Registry:
    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def import_file(self, path: Path) -> tuple[RegisteredDevice, bool]:
        """Register the bundle at `path` (a ConfigError names what is wrong with it);
        returns the entry and whether it is new."""
        return self.register(load_model(path, Registration))

    def register(self, bundle: Registration) -> tuple[RegisteredDevice, bool]:
        now = datetime.now(UTC)
        where = bundle.location
        with self._lock:
            new = not self._db.execute(
                "SELECT 1 FROM devices WHERE device = ?", (bundle.device,)
            ).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bundle.device,
                    bundle.site,
                    bundle.kind.value,
                    bundle.name,
                    where.lat if where else None,
                    where.lon if where else None,
                    bundle.credential.model_dump_json() if bundle.credential else None,
                    now.isoformat(),
                ),
            )
        entry = RegisteredDevice(
            bundle.device, bundle.site, bundle.kind, bundle.name, where, bundle.credential, now
        )
        return entry, new

    def get(self, device: str) -> RegisteredDevice | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM devices WHERE device = ?", (device,)).fetchone()
        return _device(row) if row else None

    def all(self) -> list[RegisteredDevice]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM devices ORDER BY device").fetchall()
        return [_device(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


Row = tuple[str, str, str, str, float | None, float | None, str | None, str]


def _device(row: Row) -> RegisteredDevice:
    device, site, kind, name, lat, lon, credential, imported = row
    location = Location(lat=lat, lon=lon) if lat is not None and lon is not None else None
    return RegisteredDevice(
        device,
        site,
        BoxKind(kind),
        name,
        location,
        Credential.model_validate_json(credential) if credential else None,
        datetime.fromisoformat(imported),
    )
