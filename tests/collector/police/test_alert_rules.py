"""Who may raise an alert and how often: the repeat window is per plate and per pole, and
only a box registered as a camera pole raises anything."""

from datetime import UTC, datetime, timedelta

from collector.fleet.registry import Registry
from collector.police.database import PoliceDb
from collector.police.records import PlateLog
from collector.police.watchlist import Priority, Watchlist
from iotruntime.registration import BoxKind, Registration
from tests.helpers import plate_read

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
WATCHED = "68B123456"


def police_with_registry(tmp_path) -> tuple[PoliceDb, PlateLog]:
    registry = Registry(tmp_path / "devices.sqlite")
    boxes = (("cam-1", BoxKind.CAMERA_POLE), ("cam-2", BoxKind.CAMERA_POLE), ("air-1", "air"))
    for device, kind in boxes:
        registry.register(
            Registration(device=device, site=f"site-{device}", kind=kind, name=device.upper())
        )
    db = PoliceDb(tmp_path / "police.sqlite")
    Watchlist(db).add("68-B1 234.56", "snatch theft", "officer-1", Priority.HIGH)
    return db, PlateLog(db, window_s=300, locate=registry.get)


def read_at(seconds: int, seq: int, device: str, camera: str):
    return plate_read(
        seq, WATCHED, ts=T0 + timedelta(seconds=seconds), device=device, camera=camera
    )


def test_the_window_is_per_pole_whatever_the_cameras_are_called(tmp_path):
    db, plates = police_with_registry(tmp_path)
    now = datetime.now(UTC)
    raised = [
        len(plates.record(f"site-{device}", read_at(t, seq, device, camera), now, False))
        for t, seq, device, camera in (
            (0, 1, "cam-1", "north"),
            (10, 2, "cam-1", "south"),  # the same pole, its other camera: the same place
            (20, 1, "cam-2", "north"),  # another pole with a camera called north
            (400, 3, "cam-1", "north"),  # the first pole again, after the window
        )
    ]
    assert raised == [1, 0, 1, 1]
    first = plates.record("site-cam-2", read_at(30, 2, "cam-2", "north"), now, False)
    assert first == []
    db.close()


def test_a_plate_read_from_a_box_that_is_no_camera_pole_is_refused_and_counted(tmp_path):
    db, plates = police_with_registry(tmp_path)
    now = datetime.now(UTC)
    assert plates.record("site-air-1", read_at(0, 1, "air-1", "north"), now, False) == []
    [(stored,)] = db.rows("SELECT count(*) FROM plate_reads")
    assert (plates.not_from_a_camera, stored) == (1, 0)
    [alert] = plates.record("site-cam-1", read_at(0, 1, "cam-1", "north"), now, False)
    assert alert.pole is not None
    assert alert.pole.name == "CAM-1"
    assert plates.not_from_a_camera == 1
    db.close()
