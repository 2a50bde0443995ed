"""One event per vehicle: tracks across frames, voting, and repeats held back."""

import numpy as np

from edge_agent.plates.tracker import PlateTracker, Sighting
from iotwire.plate_formats import parse_plate

CROP = np.zeros((4, 4, 3), np.uint8)


def seen(text: str, confidence: float, at: float, x: int = 100) -> Sighting:
    return Sighting(parse_plate(text), confidence, (x, 300, 120, 90), None, at, CROP)


def test_agreeing_frames_outvote_one_confident_misread():
    tracker = PlateTracker(gap_s=0.5)
    reads = [
        ("68-B1 234.56", 0.81),
        ("68-B1 234.58", 0.99),
        ("68-B1 234.56", 0.80),
        ("68-B1 234.56", 0.83),
    ]
    events = []
    for i, (text, confidence) in enumerate(reads):
        events += tracker.update([seen(text, confidence, i * 0.1, x=100 + 8 * i)], i * 0.1)
    assert events == []
    [event] = tracker.update([], 1.0)
    assert event.best.plate.canonical == "68B123456"
    assert (event.votes, event.frames) == (3, 4)
    assert event.best.confidence == 0.83
    assert event.confidence == 0.75 * (0.81 + 0.80 + 0.83) / 3


def test_two_vehicles_in_one_frame_are_two_events():
    tracker = PlateTracker(gap_s=0.5)
    for i in range(3):
        tracker.update(
            [seen("68A-123.45", 0.9, i * 0.1, x=100), seen("29-HA 002.33", 0.9, i * 0.1, x=900)],
            i * 0.1,
        )
    events = tracker.update([], 2.0)
    assert sorted(e.best.plate.canonical for e in events) == ["29HA00233", "68A12345"]


def test_the_same_plate_again_within_the_interval_is_held_back():
    tracker = PlateTracker(gap_s=0.5, repeat_after_s=30)

    def pass_by(start: float) -> list:
        for i in range(3):
            tracker.update([seen("68A-123.45", 0.9, start + i * 0.1)], start + i * 0.1)
        return tracker.update([], start + 2)

    assert len(pass_by(0)) == 1
    assert pass_by(10) == []  # back within 30 s: the same vehicle waiting at the light
    assert len(pass_by(45)) == 1


def test_a_single_frame_is_not_an_event_by_default():
    tracker = PlateTracker(gap_s=0.5)
    tracker.update([seen("68A-123.45", 0.99, 0.0)], 0.0)
    assert tracker.update([], 1.0) == []
    tracker.update([seen("68A-123.45", 0.99, 2.0)], 2.0)
    tracker.update([seen("68A-123.45", 0.99, 2.1)], 2.1)
    assert len(tracker.flush()) == 1


def test_open_tracks_say_where_to_look_next():
    tracker = PlateTracker(gap_s=0.5)
    tracker.update([seen("68A-123.45", 0.9, 0.0, x=400)], 0.0)
    assert tracker.regions() == [(280, 210, 360, 270)]
    tracker.update([], 1.0)
    assert tracker.regions() == []
