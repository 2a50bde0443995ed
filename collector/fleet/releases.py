"""Software releases for the boxes: the shelf of bundles the center offers, the rollout in
waves, and the audit trail of every offer and how it ended.

A release is a bundle made by scripts/build_bundle.py from this repository (the project's
wheel and every wheel it needs for one platform, pinned, with SHA256SUMS). `add` checks
it whole, as a box will, and keeps it in the registry's folder (`<registry>/../releases/`,
which the API serves at /releases/NAME); the offer a box receives names the bundle's URL
and its digest, signed with the key that signs config pushes (iotwire/software_update.py),
so the box needs to trust no web server, only the key.

A rollout goes in waves: the first `wave_size` boxes are offered the release together,
each installs it, tries it and answers; only if every box of a wave answered `applied`
does the next wave start, after `soak_s`, so a release that breaks on real boxes stops at
the first few. Boxes already on the version answer `applied` at once.
"""

import asyncio
import hashlib
import re
import shutil
import sqlite3
import tarfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.fleet.commands import NoAnswerError, send_command
from collector.i18n import services
from iotruntime.connection import BrokerSettings
from iotruntime.sqlite_files import open_sqlite, write_transaction
from iotwire.config_push import PushOutcome, outcome_of, signed_args
from iotwire.software_update import SoftwareUpdate

_ = services.gettext
FOLDER = "releases"
OFFERED = "offered"
NO_ANSWER = "no_answer"
RESEND_EVERY_S = 5.0
_WHEEL = re.compile(r"^wheels/phuquoc_telemetry-([^-]+)-")

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    name TEXT PRIMARY KEY, version TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    added TEXT NOT NULL, added_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS software_updates (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, device TEXT NOT NULL,
    release TEXT NOT NULL, version TEXT NOT NULL, offer TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS software_updates_no_update BEFORE UPDATE ON software_updates
    BEGIN SELECT RAISE(ABORT, 'the software update log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS software_updates_no_delete BEFORE DELETE ON software_updates
    BEGIN SELECT RAISE(ABORT, 'the software update log is append-only'); END;
"""


class BadBundleError(ValueError):
    """A file that is not a release bundle, or a damaged one."""


@dataclass(frozen=True)
class Release:
    name: str
    version: str
    sha256: str
    bytes: int
    added: datetime
    added_by: str


@dataclass(frozen=True)
class UpdateEvent:
    at: datetime
    actor: str
    device: str
    release: str
    version: str
    offer: str
    action: str  # OFFERED, a PushOutcome value, or NO_ANSWER
    detail: str


@dataclass(frozen=True)
class Outcome:
    device: str
    action: str
    detail: str

    @property
    def applied(self) -> bool:
        return self.action == PushOutcome.APPLIED.value


def releases_folder(registry_path: Path) -> Path:
    return registry_path.parent / FOLDER


def bundle_version(bundle: Path) -> str:
    """The project version a bundle installs, once every wheel in it matches SHA256SUMS."""
    try:
        with tarfile.open(bundle) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            sums_member = members.get("wheels/SHA256SUMS")
            if sums_member is None:
                raise BadBundleError(
                    _("{bundle}: no wheels/SHA256SUMS: not a release bundle").format(bundle=bundle)
                )
            sums = _read(tar, sums_member).decode().splitlines()
            for line in sums:
                expected, _sep, name = line.partition("  ")
                member = members.get(f"wheels/{name.strip()}")
                if member is None or hashlib.sha256(_read(tar, member)).hexdigest() != expected:
                    raise BadBundleError(
                        _("{bundle}: {wheel} does not match its checksum").format(
                            bundle=bundle, wheel=name.strip()
                        )
                    )
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise BadBundleError(
            _("{bundle}: not a release bundle: {why}").format(bundle=bundle, why=exc)
        ) from None
    versions = {m.group(1) for name in members if (m := _WHEEL.match(name))}
    if len(versions) != 1:
        raise BadBundleError(
            _("{bundle}: holds no phuquoc_telemetry wheel, or several").format(bundle=bundle)
        )
    return versions.pop()


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    file = tar.extractfile(member)
    if file is None:
        raise BadBundleError(_("{name}: not a file").format(name=member.name))
    return file.read()


class ReleaseShelf:
    """The bundles on offer and the trail of offers, in the registry's database and its
    folder."""

    def __init__(self, registry_path: Path) -> None:
        self.folder = releases_folder(registry_path)
        self._db = open_sqlite(registry_path)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def add(self, bundle: Path, by: str) -> Release:
        version = bundle_version(bundle)
        name = bundle.name
        if self.get(name) is not None:
            raise BadBundleError(
                _("{name} is on the shelf already; a release is never replaced").format(name=name)
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / name
        partial = self.folder / f".{name}.part"
        shutil.copyfile(bundle, partial)
        with partial.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        partial.replace(kept)
        release = Release(
            name, version, digest, kept.stat().st_size, datetime.now(UTC).replace(microsecond=0), by
        )
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "INSERT INTO releases (name, version, sha256, bytes, added, added_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, version, digest, release.bytes, release.added.isoformat(), by),
            )
        return release

    def get(self, name: str) -> Release | None:
        found = self._releases("WHERE name = ?", (name,))
        return found[0] if found else None

    def all(self) -> list[Release]:
        return self._releases("ORDER BY added", ())

    def _releases(self, clause: str, args: tuple[str, ...]) -> list[Release]:
        rows: list[sqlite3.Row] = self._db.execute(
            "SELECT name, version, sha256, bytes, added, added_by FROM releases "  # noqa: S608 - fixed clauses, values bound
            + clause,
            args,
        ).fetchall()
        return [
            Release(name, version, digest, size, datetime.fromisoformat(added), by)
            for name, version, digest, size, added, by in rows
        ]

    def record(
        self, actor: str, offer: SoftwareUpdate, release: str, action: str, detail: str
    ) -> None:
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "INSERT INTO software_updates"
                " (at, actor, device, release, version, offer, action, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(),
                    actor,
                    offer.device,
                    release,
                    offer.version,
                    offer.nonce,
                    action,
                    detail,
                ),
            )

    def events(self, device: str | None = None) -> list[UpdateEvent]:
        where, args = ("WHERE device = ?", (device,)) if device else ("", ())
        rows: list[sqlite3.Row] = self._db.execute(
            "SELECT at, actor, device, release, version, offer, action, detail"  # noqa: S608 - fixed clause, values bound
            f" FROM software_updates {where} ORDER BY id",
            args,
        ).fetchall()
        return [UpdateEvent(datetime.fromisoformat(at), *rest) for at, *rest in rows]

    def close(self) -> None:
        self._db.close()


def offer(release: Release, device: str, url: str, by: str, health_s: float) -> SoftwareUpdate:
    """An offer of `release` to `device`, issued now, with a fresh nonce (the command's id
    too, so the trail, the box's record and its answer share one name)."""
    return SoftwareUpdate(
        device=device,
        issued=datetime.now(UTC),
        nonce=uuid.uuid4().hex,
        by=by,
        version=release.version,
        url=url,
        sha256=release.sha256,
        health_s=health_s,
    )


@dataclass(frozen=True)
class Rollout:
    """One rollout's settings: what, to whom (in order), how, and signed by whom."""

    release: Release
    url: str
    devices: Sequence[tuple[str, str]]  # (device, site)
    wave_size: int
    health_s: float
    soak_s: float
    timeout_s: float
    by: str


async def roll_out(
    plan: Rollout,
    shelf: ReleaseShelf,
    broker: BrokerSettings,
    key: Ed25519PrivateKey,
    progress: Callable[[int, list[Outcome]], None],
) -> list[Outcome]:
    """Offer the release wave by wave; stop after the first wave in which a box did not
    apply it. `progress` hears each wave's outcomes as it ends."""
    done: list[Outcome] = []
    waves = [
        plan.devices[i : i + plan.wave_size] for i in range(0, len(plan.devices), plan.wave_size)
    ]
    for number, wave in enumerate(waves, 1):
        if number > 1:
            await asyncio.sleep(plan.soak_s)
        outcomes = await asyncio.gather(
            *(_offer_one(plan, shelf, broker, key, device, site) for device, site in wave)
        )
        done.extend(outcomes)
        progress(number, list(outcomes))
        if not all(o.applied for o in outcomes):
            break
    return done


async def _offer_one(
    plan: Rollout,
    shelf: ReleaseShelf,
    broker: BrokerSettings,
    key: Ed25519PrivateKey,
    device: str,
    site: str,
) -> Outcome:
    made = offer(plan.release, device, plan.url, plan.by, plan.health_s)
    shelf.record(plan.by, made, plan.release.name, OFFERED, plan.url)
    try:
        ack = await send_command(
            broker,
            site,
            device,
            "update_software",
            signed_args(made, key),
            plan.timeout_s,
            command_id=made.nonce,
            resend_every_s=RESEND_EVERY_S,
        )
    except (NoAnswerError, aiomqtt.MqttError, OSError) as exc:
        shelf.record(plan.by, made, plan.release.name, NO_ANSWER, str(exc))
        return Outcome(device, NO_ANSWER, str(exc))
    outcome = outcome_of(ack)
    action = outcome.value if outcome is not None else NO_ANSWER
    shelf.record(plan.by, made, plan.release.name, action, ack.detail)
    return Outcome(device, action, ack.detail)
