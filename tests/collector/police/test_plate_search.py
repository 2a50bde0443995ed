"""Plate search over reads recorded as ingest records them: a vehicle passing three poles
is found exactly, by wildcards and fuzzily, in order; what is refused and what is audited."""

from datetime import UTC, datetime, timedelta

import pytest

from collector.fleet.registry import Registry
from collector.police import audit
from collector.police.areas import AreaError, parse_area
from collector.police.database import PoliceDb
from collector.police.matching import MatchKind
from collector.police.records import PlateLog
from collector.police.search import PlateQuery, SearchError, scope, search
from iotruntime.registration import BoxKind, Location, Registration
from tests.helpers import plate_read

NOW = datetime.now(UTC).replace(microsecond=0)
# Three poles along Tran Hung Dao, Duong Dong, south to north, and one at An Thoi.
POLES = {
    "cam-1": (10.2101, 103.9621),
    "cam-2": (10.2163, 103.9598),
    "cam-3": (10.2225, 103.9577),
    "cam-9": (10.0280, 104.0090),
}
THIEF = "51F12345"


@pytest.fixture
def police(tmp_path):
    registry = Registry(tmp_path / "devices.sqlite")
    for device, (lat, lon) in POLES.items():
        registry.register(
            Registration(
                device=device,
                site=f"pole-{device[-1]}",
                kind=BoxKind.CAMERA_POLE,
                name=f"Pole {device[-1]}",
                location=Location(lat=lat, lon=lon),
            )
        )
    db = PoliceDb(tmp_path / "police.sqlite")
    plates = PlateLog(db, locate=registry.get, reads_days=30)
    passes = [
        # (minutes ago, device, seq, plate as read)
        (50, "cam-1", 1, THIEF),
        (45, "cam-2", 1, THIEF),
        (44, "cam-2", 2, "51F12346"),  # a neighbour one character away
        (40, "cam-3", 1, "51F1Z345"),  # the thief again, read with a confusion
        (30, "cam-9", 1, "30A99999"),
        (20, "cam-1", 2, "29A16273"),
        (10, "cam-3", 2, "51F12845"),  # one character away from the thief's
    ]
    for minutes, device, seq, text in passes:
        read = plate_read(seq, text, ts=NOW - timedelta(minutes=minutes), device=device)
        plates.record(f"pole-{device[-1]}", read, NOW, backlog=False)
    yield db, registry
    db.close()
    registry.close()


def found(db, text: str, **options) -> list[tuple[str, str, MatchKind]]:
    query = PlateQuery(text, "case 2026-PQ-0417", **options)
    return [(s.device, s.plate, s.match) for s in search(db, query, "officer-binh", 30, NOW)]


def test_an_exact_search_gives_the_route_in_order(police):
    db, _ = police
    assert found(db, "51F-123.45", oldest_first=True) == [
        ("cam-1", THIEF, MatchKind.EXACT),
        ("cam-2", THIEF, MatchKind.EXACT),
    ]
    assert found(db, "51F12345") == [
        ("cam-2", THIEF, MatchKind.EXACT),
        ("cam-1", THIEF, MatchKind.EXACT),
    ]


def test_wildcards_match_inside_and_at_either_end(police):
    db, _ = police
    assert {p for _, p, _ in found(db, "51F-12?.?5")} == {THIEF, "51F12845"}
    assert {p for _, p, _ in found(db, "51F-1?3.45")} == {THIEF, "51F1Z345"}
    assert found(db, "*6273") == [("cam-1", "29A16273", MatchKind.EXACT)]
    assert {p for _, p, _ in found(db, "51F*")} == {THIEF, "51F12346", "51F1Z345", "51F12845"}
    assert {p for _, p, _ in found(db, "*12?45")} == {THIEF, "51F12845"}


def test_a_fuzzy_search_finds_confusions_and_one_character_off_the_three_poles(police):
    db, _ = police
    route = found(db, "51F-123.45", fuzzy=True, oldest_first=True)
    assert route == [
        ("cam-1", THIEF, MatchKind.EXACT),
        ("cam-2", THIEF, MatchKind.EXACT),
        ("cam-2", "51F12346", MatchKind.ONE_CHARACTER),
        ("cam-3", "51F1Z345", MatchKind.CONFUSION),
        ("cam-3", "51F12845", MatchKind.ONE_CHARACTER),
    ]


def test_filters_by_time_pole_camera_site_and_area(police):
    db, registry = police
    assert found(db, "51F*", since=NOW - timedelta(minutes=42)) == [
        ("cam-3", "51F12845", MatchKind.EXACT),
        ("cam-3", "51F1Z345", MatchKind.EXACT),
    ]
    assert found(db, "51F*", until=NOW - timedelta(minutes=46)) == [
        ("cam-1", THIEF, MatchKind.EXACT)
    ]
    duong_dong = parse_area("10.20,103.95;10.20,103.97;10.219,103.97;10.219,103.95")
    inside = scope(registry, where=duong_dong)
    assert inside == {"cam-1", "cam-2"}
    assert {d for d, _, _ in found(db, "51F*", devices=inside)} == {"cam-1", "cam-2"}
    assert scope(registry, sites=["pole-9", "pole-1"], devices=["cam-1"]) == {"cam-1"}
    assert found(db, THIEF, devices=frozenset()) == []
    assert found(db, THIEF, camera="south") == []


def test_every_search_is_audited_and_one_without_a_purpose_is_refused(police):
    db, _ = police
    found(db, "*6273", camera="north")
    [record] = audit.records(db, action="plates.search")
    assert (record.actor, record.subject) == ("officer-binh", "*6273")
    assert record.detail["purpose"] == "case 2026-PQ-0417"
    assert (record.detail["plates"], record.detail["sightings"]) == (1, 1)
    for purpose in ("", "  "):
        with pytest.raises(SearchError, match="purpose: say why"):
            search(db, PlateQuery(THIEF, purpose), "officer-binh", 30, NOW)
    assert len(audit.records(db, action="plates.search")) == 1


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("*", {}, "at least 3 known characters"),
        ("5?*", {}, "at least 3 known characters"),
        ("51F[1-3]*", {}, "letters, digits and the wildcards"),
        ("51F12%", {}, "letters, digits and the wildcards"),
        ("51F*", {"fuzzy": True}, "use wildcards or fuzzy, not both"),
        ("51F12345", {"limit": 0}, "limit: between 1 and 1000"),
        (
            "51F12345",
            {"since": NOW, "until": NOW - timedelta(days=1)},
            "since: after until",
        ),
    ],
)
def test_a_search_that_cannot_run_says_why(police, text, options, message):
    db, _ = police
    with pytest.raises(SearchError, match=message):
        found(db, text, **options)


def test_reads_past_retention_are_never_returned(police, tmp_path):
    db, registry = police
    plates = PlateLog(db, locate=registry.get, reads_days=30)
    old = plate_read(3, THIEF, ts=NOW - timedelta(days=31), device="cam-1")
    plates.record("pole-1", old, NOW - timedelta(days=30, hours=23), backlog=False)
    [(kept,)] = db.rows("SELECT count(*) FROM plate_reads WHERE plate = ?", (THIEF,))
    assert kept == 3
    assert len(found(db, THIEF, since=NOW - timedelta(days=60))) == 2


def test_an_area_that_is_no_polygon_is_refused():
    for text, message in (
        ("10.2,103.9;10.3,103.9", "at least 3 corners"),
        ("10.2,103.9;10.3;10.3,104.0", "corner '10.3': write it as lat,lon"),
        ("10.2,103.9;95,103.9;10.3,104.0", "not a latitude and longitude"),
    ):
        with pytest.raises(AreaError, match=message):
            parse_area(text)


def test_a_database_from_before_search_is_indexed_when_opened(tmp_path):
    path = tmp_path / "police.sqlite"
    db = PoliceDb(path)
    plates = PlateLog(db, reads_days=30)
    for seq, text in enumerate((THIEF, THIEF, "29A16273"), start=1):
        plates.record("pole-1", plate_read(seq, text, ts=NOW - timedelta(minutes=seq)), NOW, False)
    with db.transaction() as tx:  # as version 1 left it: reads, no distinct texts
        tx.execute("DROP TABLE plate_texts")
        tx.execute("DROP INDEX plate_reads_plate")
        tx.execute("PRAGMA user_version=1")
    db.close()
    db = PoliceDb(path)
    assert db.rows("SELECT plate, reversed, folded FROM plate_texts ORDER BY plate") == [
        ("29A16273", "37261A92", "29A16273"),
        (THIEF, THIEF[::-1], THIEF),
    ]
    assert len(found(db, THIEF)) == 2
    [(version,)] = db.rows("PRAGMA user_version")
    assert version == 2
    db.close()
