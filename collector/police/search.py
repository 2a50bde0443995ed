"""Where and when a plate was seen: exact, with wildcards, or fuzzy, for an officer with a
purpose.

A search first finds the distinct plate texts it means (`plate_texts`, one row per plate
ever read and still kept), then their reads by the `(plate, ts)` index, newest first. The
distinct texts are few next to the reads (a vehicle passes many poles many times), and
each kind of question is an index range over them:

- exact: the plate itself;
- wildcards (`?` one character, `*` any run): the literal text before the first wildcard
  is a range of the plate index; a pattern that starts with a wildcard (`*6273`) is a
  range of the reversed-text index instead, by its literal end;
- fuzzy: the same plate up to OCR confusions (the folded-text index) or one character
  changed, added or left out (a handful of one-wildcard patterns, each a range as above),
  the matcher's notion of a near match (collector/police/matching.py).

Every search is audited with the officer, the question and its purpose, whether it found
anything or not, and never returns a read past the reads' retention, even one an alert
still holds.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.fleet.registry import Registry
from collector.i18n import services
from collector.police import audit
from collector.police.areas import Area, devices_in
from collector.police.confusions import fold
from collector.police.database import PoliceDb, utc_text
from collector.police.matching import MatchKind

_ = services.gettext

MIN_LITERALS = 3
MAX_RESULTS = 1000
MIN_PURPOSE = 3
_SEPARATORS = re.compile(r"[\s\-.·:_]+")
_ALLOWED = re.compile(r"[A-Z0-9?*]+")
_COLUMNS = (
    "SELECT device, seq, site, camera, ts, plate, display, confidence, colour, crop_jpeg_b64"
    " FROM plate_reads"
)


class SearchError(ValueError):
    """A search that cannot be run as asked; the message says what to change."""


@dataclass(frozen=True)
class PlateQuery:
    """A search as an officer asks it. `devices` limits it to those boxes (a site, an area
    on the map or a list of poles, resolved by the caller against the registry)."""

    text: str
    purpose: str
    fuzzy: bool = False
    since: datetime | None = None
    until: datetime | None = None
    devices: frozenset[str] | None = None
    camera: str | None = None
    oldest_first: bool = False
    limit: int = 200
    filters: dict[str, Any] = field(default_factory=dict)  # as asked, for the audit record


@dataclass(frozen=True)
class Sighting:
    plate: str
    display: str
    match: MatchKind
    device: str
    seq: int
    site: str
    camera: str
    ts: datetime
    confidence: float
    colour: str | None
    crop_jpeg_b64: str | None


def scope(
    registry: Registry | None,
    sites: Sequence[str] = (),
    devices: Sequence[str] = (),
    where: Area | None = None,
) -> frozenset[str] | None:
    """The boxes a search is limited to: those named, those at the sites named and those
    inside the area, all of them at once (None: every box). Sites and areas are the
    registry's, so they need one."""
    chosen: frozenset[str] | None = frozenset(devices) if devices else None
    if not sites and where is None:
        return chosen
    if registry is None:
        raise SearchError(_("site and area filters need the device registry (registry.path)"))
    registered = registry.all()
    if sites:
        at_sites = frozenset(d.device for d in registered if d.site in set(sites))
        chosen = at_sites if chosen is None else chosen & at_sites
    if where is not None:
        inside = devices_in(registered, where)
        chosen = inside if chosen is None else chosen & inside
    return chosen


def normalised(text: str) -> str:
    """The canonical form of what was typed, wildcards kept: `51F-12?.?5` -> `51F12??5`."""
    cleaned = _SEPARATORS.sub("", text.upper().replace("Đ", "D").replace("Ð", "D"))
    if not cleaned or not _ALLOWED.fullmatch(cleaned):
        raise SearchError(
            _(
                "plate {text}: letters, digits and the wildcards ? (one character) and *"
                " (any run) only"
            ).format(text=repr(text))
        )
    literals = sum(ch not in "?*" for ch in cleaned)
    if literals < MIN_LITERALS:
        raise SearchError(
            _(
                "plate {text}: at least {least} known characters; a broader search"
                " would list the island's traffic"
            ).format(text=repr(text), least=MIN_LITERALS)
        )
    return re.sub(r"\*+", "*", cleaned)


def _range_of(prefix: str, column: str) -> tuple[str, list[str]]:
    """An index range on `column` holding every text that starts with `prefix`."""
    return f"{column} >= ? AND {column} < ?", [prefix, prefix + "\U0010ffff"]


def _glob_plates(db: PoliceDb, pattern: str) -> list[str]:
    """The distinct plates matching a GLOB `pattern`, looked up by its longer literal end."""
    head = re.split(r"[?*]", pattern, maxsplit=1)[0]
    tail = re.split(r"[?*]", pattern[::-1], maxsplit=1)[0]
    if len(head) >= len(tail):
        where, args = _range_of(head, "plate")
    else:
        where, args = _range_of(tail, "reversed")
    rows = db.rows(
        f"SELECT plate FROM plate_texts WHERE {where} AND plate GLOB ?",  # noqa: S608 - fixed column names
        [*args, pattern],
    )
    return [plate for (plate,) in rows]


def _one_apart_patterns(text: str) -> list[str]:
    """GLOB patterns for every text one substitution or one insertion away from `text`."""
    substituted = [f"{text[:i]}?{text[i + 1 :]}" for i in range(len(text))]
    inserted = [f"{text[:i]}?{text[i:]}" for i in range(len(text) + 1)]
    return substituted + inserted


def matching_plates(db: PoliceDb, query: PlateQuery) -> dict[str, MatchKind]:
    """The distinct plates the query means, with how each matched."""
    text = normalised(query.text)
    wild = "?" in text or "*" in text
    if wild and query.fuzzy:
        raise SearchError(_("a fuzzy search takes a whole plate; use wildcards or fuzzy, not both"))
    if wild:
        return dict.fromkeys(_glob_plates(db, text), MatchKind.EXACT)
    found = (
        {text: MatchKind.EXACT}
        if db.rows("SELECT 1 FROM plate_texts WHERE plate = ?", (text,))
        else {}
    )
    if not query.fuzzy:
        return found
    for (plate,) in db.rows("SELECT plate FROM plate_texts WHERE folded = ?", (fold(text),)):
        found.setdefault(plate, MatchKind.CONFUSION)
    shorter = {f"{text[:i]}{text[i + 1 :]}" for i in range(len(text))}
    for plate in shorter:
        if db.rows("SELECT 1 FROM plate_texts WHERE plate = ?", (plate,)):
            found.setdefault(plate, MatchKind.ONE_CHARACTER)
    for pattern in _one_apart_patterns(text):
        for plate in _glob_plates(db, pattern):
            found.setdefault(plate, MatchKind.ONE_CHARACTER)
    return found


def _sighting(row: Sequence[Any], kinds: dict[str, MatchKind]) -> Sighting:
    device, seq, site, camera, ts, plate, display, confidence, colour, crop = row
    return Sighting(
        plate,
        display,
        kinds[plate],
        device,
        seq,
        site,
        camera,
        datetime.fromisoformat(ts),
        confidence,
        colour,
        crop,
    )


def search(
    db: PoliceDb, query: PlateQuery, officer: str, reads_days: int, now: datetime | None = None
) -> list[Sighting]:
    """The sightings the query asks for, newest first (oldest first for a route), after
    writing the search to the audit log: a refused search is not audited, it ran nothing."""
    now = now or datetime.now(UTC)
    if len(query.purpose.strip()) < MIN_PURPOSE:
        raise SearchError(_("purpose: say why (a case number or the report's reference)"))
    if not 1 <= query.limit <= MAX_RESULTS:
        raise SearchError(_("limit: between 1 and {most}").format(most=MAX_RESULTS))
    kept_since = now - timedelta(days=reads_days)
    since = max(query.since, kept_since) if query.since else kept_since
    until = min(query.until, now) if query.until else now
    if since > until:
        raise SearchError(_("since: after until; nothing can match"))
    kinds = matching_plates(db, query)
    sightings = _sightings(db, query, kinds, since, until)
    with db.transaction() as tx:
        audit.record(
            tx,
            officer,
            "plates.search",
            query.text,
            {
                "purpose": query.purpose.strip(),
                "fuzzy": query.fuzzy,
                "since": since.isoformat(),
                "until": until.isoformat(),
                **query.filters,
                "plates": len(kinds),
                "sightings": len(sightings),
            },
            now,
        )
    return sightings


def _sightings(
    db: PoliceDb,
    query: PlateQuery,
    kinds: dict[str, MatchKind],
    since: datetime,
    until: datetime,
) -> list[Sighting]:
    if not kinds or (query.devices is not None and not query.devices):
        return []
    clauses = [
        f"plate IN ({','.join('?' * len(kinds))})",
        "ts >= ?",
        "ts <= ?",
    ]
    args: list[Any] = [*kinds, utc_text(since), utc_text(until)]
    if query.devices is not None:
        clauses.append(f"device IN ({','.join('?' * len(query.devices))})")
        args += sorted(query.devices)
    if query.camera is not None:
        clauses.append("camera = ?")
        args.append(query.camera)
    order = "ASC" if query.oldest_first else "DESC"
    rows = db.rows(
        f"{_COLUMNS} WHERE {' AND '.join(clauses)} ORDER BY ts {order} LIMIT ?",
        [*args, query.limit],
    )
    return [_sighting(row, kinds) for row in rows]
