"""Plate reads are personal data: purged after their retention unless an alert holds
them, alerts after theirs, each purge audited; reads already past retention are never
stored."""

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
import yaml

from collector.police import audit
from collector.police.database import PoliceDb
from collector.police.photos import PhotoError, Photos
from collector.police.records import PlateLog
from collector.police.retention import Purged, purge
from collector.police.watchlist import Watchlist
from testbed.processes import run_cli
from tests.helpers import plate_read

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def stored(db: PoliceDb) -> tuple[list[int], int]:
    reads = [seq for (seq,) in db.rows("SELECT seq FROM plate_reads ORDER BY seq")]
    [(alerts,)] = db.rows("SELECT count(*) FROM alerts")
    return reads, alerts


def test_reads_go_after_30_days_unless_an_alert_holds_them_and_alerts_after_theirs(tmp_path):
    db = PoliceDb(tmp_path / "police.sqlite")
    Watchlist(db).add("68A-123.45", "stolen car", "officer-1", now=NOW - timedelta(days=500))
    plates = PlateLog(db, reads_days=30)
    ages = {1: 1, 2: 29, 3: 31, 4: 200, 5: 40, 6: 400}  # days; 5 and 6 raise alerts
    for seq, days in ages.items():
        age = timedelta(days=days)
        text = "68A12345" if seq in (5, 6) else f"51G{seq:05d}"
        plates.record("pole-7", plate_read(seq, text, ts=NOW - age), NOW - age, backlog=False)
    assert stored(db) == ([1, 2, 3, 4, 5, 6], 2)

    purged = purge(db, reads_days=30, alerts_days=365, now=NOW)
    assert (purged.reads, purged.alerts) == (3, 1)  # reads 3, 4 and 6; the alert of 6
    assert stored(db) == ([1, 2, 5], 1)
    assert purge(db, reads_days=30, alerts_days=365, now=NOW) == Purged(0, 0)
    [record] = audit.records(db, action="retention.purge")
    assert (record.detail["reads"], record.detail["alerts"]) == (3, 1)
    [(deliveries,)] = db.rows("SELECT count(*) FROM alert_deliveries")
    assert deliveries == 1  # the purged alert's delivery went with it

    assert (
        plates.record("pole-7", plate_read(7, "68A12345", ts=NOW - timedelta(days=31)), NOW, False)
        == []
    )
    assert (plates.too_old, stored(db)) == (1, ([1, 2, 5], 1))
    db.close()


@pytest.mark.servers
def test_the_purge_command_reports_what_it_removed(tmp_path):
    police = tmp_path / "police.sqlite"
    db = PoliceDb(police)
    plates = PlateLog(db, reads_days=7)
    old = timedelta(days=8)
    plates.record("pole-7", plate_read(1, "51G00001", ts=NOW - old), NOW - old, backlog=False)
    db.close()
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"alerts": {"path": str(police), "reads_days": 7}}))
    result = run_cli("collector", "alerts", "purge", "-c", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "purged 1 plate read(s) and 0 alert(s)" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"alerts": {"reads_days": 40, "alerts_days": 30}}))
    refused = run_cli("collector", "alerts", "purge", "-c", str(bad))
    assert refused.returncode == 2
    assert "alerts_days must not be shorter than reads_days" in refused.stdout


def test_citizens_photos_and_distinct_plates_go_with_the_reads_retention(tmp_path):
    db = PoliceDb(tmp_path / "police.sqlite")
    plates = PlateLog(db, reads_days=30)
    for seq, days in ((1, 40), (2, 1)):
        age = timedelta(days=days)
        read = plate_read(seq, f"51G0000{seq}", ts=NOW - age)
        plates.record("pole-7", read, NOW - age, backlog=False)
    photos = Photos(db)
    blank = cv2.imencode(".jpg", np.full((64, 64, 3), 200, np.uint8))[1].tobytes()
    old = photos.upload(blank, "officer-1", "PQ-0001", now=NOW - timedelta(days=31))
    recent = photos.upload(blank, "officer-1", "PQ-0002", now=NOW - timedelta(days=2))
    assert (old.plates, recent.plates) == ([], [])
    assert purge(db, reads_days=30, alerts_days=365, now=NOW) == Purged(1, 0, 1)
    assert [p for (p,) in db.rows("SELECT plate FROM plate_texts")] == ["51G00002"]
    with pytest.raises(PhotoError, match="past its retention"):
        photos.get(old.id)
    assert photos.get(recent.id).case == "PQ-0002"
    [record] = audit.records(db, action="retention.purge")
    assert record.detail["photos"] == 1
    db.close()
