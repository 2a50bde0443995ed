"""Citizens' photos of a snatch theft, read for plates, kept as evidence under the plate
reads' retention, and one chosen plate put on the watchlist with the case number.

The photo is read by the poles' own reader, the same models and settings, run as
`edge-agent plates read --json --crops` in a child process: the collector may not import
the edge agent (the dependency rule of docs/architecture.md), and a child keeps the
models' few hundred megabytes out of a collector that reads a photo now and then. The
collector's host needs the `vision` extra and the OCR models, as a pole does; without
them an upload is refused saying so, and nothing is stored.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from collector.i18n import services
from collector.police import audit
from collector.police.database import PoliceDb
from collector.police.watchlist import Priority, WatchEntry, Watchlist

_ = services.gettext

MAX_PHOTO_BYTES = 20 * 1024 * 1024
READ_TIMEOUT_S = 120.0
# What a phone or a messaging app sends: JPEG, PNG, WebP, by their first bytes.
FORMATS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png", b"RIFF": ".webp"}


class PhotoError(ValueError):
    """A photo or a request about one that cannot be taken; the message says why."""


class ReaderUnavailableError(RuntimeError):
    """The plate reader cannot run on this host; the message says what to install."""


@dataclass(frozen=True)
class PhotoPlate:
    plate: str
    display: str
    confidence: float
    box: tuple[int, int, int, int]  # x1, y1, x2, y2
    colour: str | None
    crop_jpeg_b64: str | None


@dataclass(frozen=True)
class PhotoRecord:
    id: str
    uploaded: datetime
    by: str
    case: str
    plates: list[PhotoPlate]


Reader = Callable[[bytes], list[PhotoPlate]]


def _suffix(image: bytes) -> str:
    for magic, suffix in FORMATS.items():
        if image.startswith(magic) and (suffix != ".webp" or image[8:12] == b"WEBP"):
            return suffix
    raise PhotoError(_("not a photo: send a JPEG, PNG or WebP image"))


def _reader_command() -> list[str]:
    beside = Path(sys.executable).parent / "edge-agent"
    found = str(beside) if beside.is_file() else shutil.which("edge-agent")
    if found is None:
        raise ReaderUnavailableError(
            _("the plate reader (`edge-agent`, with the vision extra) is not installed here")
        )
    return [found, "plates", "read", "--json", "--crops"]


def read_plates(image: bytes) -> list[PhotoPlate]:
    """The plates the poles' reader finds in `image`, the surest first."""
    with tempfile.TemporaryDirectory(prefix="pq-photo-") as folder:
        path = Path(folder) / f"photo{_suffix(image)}"
        path.write_bytes(image)
        try:
            done = subprocess.run(
                [*_reader_command(), str(path)],
                capture_output=True,
                text=True,
                timeout=READ_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ReaderUnavailableError(
                _("the plate reader took over {seconds} s").format(seconds=f"{READ_TIMEOUT_S:.0f}")
            ) from None
    reason = done.stderr.strip().removeprefix("error:").strip()
    if done.returncode == 1:
        why = reason.split(": ", 1)[-1]
        raise PhotoError(_("the photo cannot be read: {why}").format(why=why))
    if done.returncode != 0:
        raise ReaderUnavailableError(_("the plate reader cannot run: {why}").format(why=reason))
    [line] = done.stdout.splitlines()
    found = [
        PhotoPlate(
            p["plate"],
            p["display"],
            p["confidence"],
            tuple(p["box"]),
            p["colour"],
            p.get("crop_jpeg_b64"),
        )
        for p in json.loads(line)["plates"]
    ]
    return sorted(found, key=lambda p: p.confidence, reverse=True)


def _record(row: tuple[str, str, str, str, str]) -> PhotoRecord:
    photo_id, uploaded, by, case, plates = row
    return PhotoRecord(
        photo_id,
        datetime.fromisoformat(uploaded),
        by,
        case,
        [PhotoPlate(**{**p, "box": tuple(p["box"])}) for p in json.loads(plates)],
    )


class Photos:
    def __init__(self, db: PoliceDb, read: Reader = read_plates) -> None:
        self._db = db
        self._read = read

    def upload(self, image: bytes, by: str, case: str, now: datetime | None = None) -> PhotoRecord:
        """Read the photo and keep it with what was found; audited with the case."""
        if not case.strip():
            raise PhotoError(_("case: the case number or report reference the photo belongs to"))
        if not image:
            raise PhotoError(_("an empty upload: send the photo as the request's body"))
        if len(image) > MAX_PHOTO_BYTES:
            raise PhotoError(
                _("a photo of at most {megabytes} MB").format(megabytes=MAX_PHOTO_BYTES // 2**20)
            )
        _suffix(image)
        plates = self._read(image)
        now = now or datetime.now(UTC)
        photo = PhotoRecord(uuid.uuid4().hex, now, by, case.strip(), plates)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO photos VALUES (?, ?, ?, ?, ?, ?)",
                (
                    photo.id,
                    now.isoformat(),
                    by,
                    photo.case,
                    image,
                    json.dumps([p.__dict__ for p in plates]),
                ),
            )
            audit.record(
                db,
                by,
                "photo.upload",
                photo.id,
                {"case": photo.case, "bytes": len(image), "plates": [p.plate for p in plates]},
                now,
            )
        return photo

    def get(self, photo_id: str) -> PhotoRecord:
        rows = self._db.rows(
            "SELECT id, uploaded, by, case_ref, plates FROM photos WHERE id = ?", (photo_id,)
        )
        if not rows:
            raise PhotoError(
                _("no photo {id} (or it is past its retention)").format(id=repr(photo_id))
            )
        return _record(rows[0])

    def image(self, photo_id: str, by: str) -> bytes:
        """The photo itself; each viewing is audited, as it shows a person's vehicle."""
        self.get(photo_id)
        with self._db.transaction() as db:
            [(image,)] = db.execute("SELECT image FROM photos WHERE id = ?", (photo_id,))
            audit.record(db, by, "photo.view", photo_id)
        return bytes(image)

    def watch(
        self,
        photo_id: str,
        plate: str,
        reason: str,
        by: str,
        priority: Priority = Priority.HIGH,
    ) -> WatchEntry:
        """Put one of the plates read in the photo on the watchlist, its reason naming
        the case and the photo."""
        photo = self.get(photo_id)
        chosen = [p for p in photo.plates if plate in (p.plate, p.display)]
        if not chosen:
            read = ", ".join(p.display for p in photo.plates) or _("none")
            raise PhotoError(
                _("plate {plate} was not read in photo {id} (read: {read})").format(
                    plate=repr(plate), id=photo_id, read=read
                )
            )
        because = f"{reason.strip() or 'citizen photo'} (case {photo.case}, photo {photo_id})"
        entry, _new = Watchlist(self._db).add(chosen[0].display, because, by, priority)
        return entry
