"""The police watchlist, its matching and its audit trail: library calls and the CLI."""

import csv
import io
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from collector.police import audit
from collector.police.database import PoliceDb
from collector.police.matching import Matcher, MatchKind
from collector.police.records import PlateLog
from collector.police.watchlist import Priority, Watchlist, WatchlistError
from testbed.processes import run_cli
from tests.helpers import plate_read

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def watchlist(tmp_path):
    db = PoliceDb(tmp_path / "police.sqlite")
    yield Watchlist(db)
    db.close()


def test_plates_are_stored_in_the_edge_canonical_form(watchlist):
    entry, new = watchlist.add("68-b1 234.56", "snatch theft, Duong Dong", "officer-1", now=NOW)
    assert (entry.plate, entry.display, new) == ("68B123456", "68-B1 234.56", True)
    again, new = watchlist.add("68B1\n23456", "snatch theft, updated", "officer-2", Priority.HIGH)
    assert (again.plate, new, again.priority) == ("68B123456", False, Priority.HIGH)
    assert [e.reason for e in watchlist.entries()] == ["snatch theft, updated"]


@pytest.mark.parametrize(
    ("plate", "reason", "expires", "message"),
    [
        (
            "68I-123.45",
            "x",
            None,
            "not a Vietnamese plate: '68I12345': series 'I': 'I' is not a series letter",
        ),
        ("68A-123.45", "  ", None, "needs a reason"),
        ("68A-123.45", "x", NOW - timedelta(days=1), "is already past"),
    ],
)
def test_bad_requests_say_why(watchlist, plate, reason, expires, message):
    with pytest.raises(WatchlistError, match=message):
        watchlist.add(plate, reason, "officer-1", expires=expires, now=NOW)
    assert watchlist.entries() == []


def test_every_change_is_audited_and_the_audit_cannot_be_rewritten(watchlist):
    watchlist.add("68A-123.45", "stolen car", "officer-1", now=NOW)
    watchlist.add("68A-123.45", "stolen car, seen An Thoi", "officer-2", now=NOW)
    watchlist.remove("68A 123.45", "officer-3")
    with pytest.raises(WatchlistError, match="68A12345 is not on the watchlist"):
        watchlist.remove("68A-123.45", "officer-3")
    found = audit.records(watchlist.db)
    assert [(r.actor, r.action, r.subject) for r in found] == [
        ("officer-1", "watchlist.add", "68A12345"),
        ("officer-2", "watchlist.update", "68A12345"),
        ("officer-3", "watchlist.remove", "68A12345"),
    ]
    assert found[1].detail["reason"] == "stolen car, seen An Thoi"
    for statement in ("UPDATE audit SET actor = 'someone'", "DELETE FROM audit"):
        with (
            pytest.raises(sqlite3.DatabaseError, match="append-only"),
            watchlist.db.transaction() as tx,
        ):
            tx.execute(statement)
    assert len(audit.records(watchlist.db)) == 3


def test_a_csv_import_reports_bad_rows_and_imports_the_rest(watchlist):
    source = io.StringIO(
        "plate,reason,priority,expires\n"
        "68A-123.45,stolen car,high,\n"
        "68Q-999.99,typo in the series,normal,\n"
        "29-HA 002.33,snatch theft,urgent,\n"
        "51G-678.90,wanted,low,2030-01-01T00:00:00\n"
    )
    result = watchlist.import_csv(source, "officer-1")
    assert (result.added, result.updated) == (2, 0)
    assert [line for line, _ in result.errors] == [3, 4]
    assert "'Q' is not a series letter" in result.errors[0][1]
    assert "priority 'urgent'" in result.errors[1][1]
    [wanted, car] = watchlist.entries()
    assert (wanted.plate, wanted.priority, wanted.expires) == (
        "51G67890",
        Priority.LOW,
        datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert (car.plate, car.priority) == ("68A12345", Priority.HIGH)


def entries(watchlist, *plates, expires=None):
    for plate in plates:
        watchlist.add(plate, "test", "officer-1", expires=expires, now=NOW)
    return Matcher(watchlist.entries())


def test_exact_confusion_and_one_character_matches(watchlist):
    matcher = entries(watchlist, "68A-123.45", "29-HD 002.33", "68-BB 123.45")
    [exact] = matcher.match("68A12345", NOW)
    assert (exact.kind, exact.score) == (MatchKind.EXACT, 1.0)
    # Read as the letter-digit series, the entry is the two-letter one: 0 for D, 8 for B.
    [folded] = matcher.match("29H000233", NOW)
    assert (folded.entry.plate, folded.kind) == ("29HD00233", MatchKind.CONFUSION)
    [bb] = matcher.match("68B812345", NOW)
    assert (bb.entry.plate, bb.kind) == ("68BB12345", MatchKind.CONFUSION)
    for read in ("68A12346", "68A1234", "68A123455"):
        [near] = matcher.match(read, NOW)
        assert (near.entry.plate, near.kind, near.score) == (
            "68A12345",
            MatchKind.ONE_CHARACTER,
            0.75,
        )
    assert matcher.match("68A12399", NOW) == []
    assert matcher.match("51G67890", NOW) == []


def test_expired_entries_never_match(watchlist):
    matcher = entries(watchlist, "68A-123.45", expires=NOW + timedelta(hours=1))
    assert len(matcher.match("68A12345", NOW)) == 1
    assert matcher.match("68A12345", NOW + timedelta(hours=1)) == []
    assert matcher.match("68A12346", NOW + timedelta(days=1)) == []


@pytest.mark.servers
def test_the_watchlist_commands(tmp_path):
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"alerts": {"path": str(tmp_path / "police.sqlite")}}))
    c = ("-c", str(config))
    added = run_cli(
        "collector",
        "watchlist",
        "add",
        *c,
        "68-B1 234.56",
        "--reason",
        "snatch theft",
        "--by",
        "officer-1",
        "--priority",
        "high",
    )
    assert added.returncode == 0, added.stdout
    assert "added 68-B1 234.56 (68B123456)" in added.stdout
    bad = run_cli(
        "collector", "watchlist", "add", *c, "68-W1 234.56", "--reason", "x", "--by", "officer-1"
    )
    assert bad.returncode == 2
    assert "'W' is not a series letter" in bad.stdout
    file = tmp_path / "list.csv"
    file.write_text("plate,reason\n68A-123.45,stolen\nnot a plate,x\n", encoding="utf-8")
    imported = run_cli("collector", "watchlist", "import", *c, str(file), "--by", "officer-2")
    assert imported.returncode == 1
    assert "line 3:" in imported.stdout
    assert "1 added, 0 updated, 1 rejected" in imported.stdout
    listed = run_cli("collector", "watchlist", "list", *c, "--csv")
    plates = [row["plate"] for row in csv.DictReader(io.StringIO(listed.stdout))]
    assert plates == ["68A12345", "68B123456"]
    removed = run_cli("collector", "watchlist", "remove", *c, "68A 123.45", "--by", "officer-3")
    assert removed.returncode == 0, removed.stdout
    trail = run_cli("collector", "audit", *c, "--csv")
    actions = [(r["actor"], r["action"]) for r in csv.DictReader(io.StringIO(trail.stdout))]
    assert actions == [
        ("officer-1", "watchlist.add"),
        ("officer-2", "watchlist.add"),
        ("officer-3", "watchlist.remove"),
    ]


def test_a_running_collector_sees_watchlist_changes_made_elsewhere(tmp_path):
    collector_db = PoliceDb(tmp_path / "police.sqlite")
    collector_side = Watchlist(collector_db)
    plates = PlateLog(collector_db)
    assert plates.record("dd", plate_read(1, "68A12345", ts=NOW), NOW, backlog=False) == []
    cli_db = PoliceDb(tmp_path / "police.sqlite")  # another process's connection
    Watchlist(cli_db).add("68A-123.45", "stolen car", "officer-1")
    cli_db.close()
    [alert] = plates.record("dd", plate_read(2, "68A12345", ts=NOW), NOW, backlog=False)
    assert alert.watched == "68A12345"
    collector_side.add("29-HA 002.33", "snatch theft", "officer-2")  # this connection
    [alert] = plates.record("dd", plate_read(3, "29HA00233", ts=NOW), NOW, backlog=True)
    assert (alert.watched, alert.backlog) == ("29HA00233", True)
    assert plates.record("dd", plate_read(3, "29HA00233", ts=NOW), NOW, backlog=True) == []  # again
    collector_db.close()
