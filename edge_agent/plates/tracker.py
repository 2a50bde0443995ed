"""One event per vehicle: plates followed across frames, reads voted, repeats held back.

A vehicle is in view for many frames and each frame reads its plate, not always the same
way. Reads are joined into a track by position (the plate moves a little between frames),
and when the track has not been seen for `gap_s` it is closed and its reads vote: the
plate read in the most frames wins, summed confidence breaks a tie. So one blurred frame
read with high confidence cannot outvote several frames that agree. The same plate at the
same camera is not reported again within `repeat_after_s`.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from iotwire.plate_formats import Colour, Plate

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Sighting:
    """One plate read in one frame, with its crop: a track keeps every sighting until it
    closes, and whole frames would cost megabytes each."""

    plate: Plate
    confidence: float
    box: Box
    colour: Colour | None
    at: float
    crop: NDArray[np.uint8]


@dataclass(frozen=True)
class PlateEvent:
    """A vehicle's plate, decided: the best frame of the winning read."""

    best: Sighting
    confidence: float
    votes: int
    frames: int


@dataclass
class _Track:
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def last(self) -> Sighting:
        return self.sightings[-1]


def _near(a: Box, b: Box) -> bool:
    """Close enough to be the same plate one frame later."""
    ax, ay = a[0] + a[2] / 2, a[1] + a[3] / 2
    bx, by = b[0] + b[2] / 2, b[1] + b[3] / 2
    reach = 1.5 * max(a[2], a[3], b[2], b[3])
    return abs(ax - bx) <= reach and abs(ay - by) <= reach


def vote(sightings: list[Sighting]) -> PlateEvent:
    by_text: dict[str, list[Sighting]] = defaultdict(list)
    for sighting in sightings:
        by_text[sighting.plate.canonical].append(sighting)
    winner = max(by_text.values(), key=lambda s: (len(s), sum(x.confidence for x in s)))
    best = max(winner, key=lambda s: s.confidence)
    agreement = len(winner) / len(sightings)
    confidence = agreement * sum(s.confidence for s in winner) / len(winner)
    return PlateEvent(best, confidence, len(winner), len(sightings))


class PlateTracker:
    def __init__(
        self, gap_s: float = 1.0, repeat_after_s: float = 60.0, min_frames: int = 2
    ) -> None:
        self._gap_s = gap_s
        self._repeat_after_s = repeat_after_s
        self._min_frames = min_frames
        self._tracks: list[_Track] = []
        self._reported: dict[str, float] = {}

    def update(self, sightings: list[Sighting], now: float) -> list[PlateEvent]:
        """Add one frame's reads; returns the events of tracks that closed."""
        open_tracks = list(self._tracks)
        for sighting in sorted(sightings, key=lambda s: -s.confidence):
            track = next((t for t in open_tracks if _near(t.last.box, sighting.box)), None)
            if track is None:
                self._tracks.append(_Track([sighting]))
            else:
                track.sightings.append(sighting)
                open_tracks.remove(track)
        return self._close(lambda track: now - track.last.at > self._gap_s)

    def regions(self) -> list[Box]:
        """Where the open tracks' plates may be next: each last box grown by its size on
        every side, enough for a vehicle's move between two reads."""
        return [(x - w, y - h, 3 * w, 3 * h) for x, y, w, h in (t.last.box for t in self._tracks)]

    def flush(self) -> list[PlateEvent]:
        """Close every track: the stream ended."""
        return self._close(lambda _: True)

    def _close(self, done: Callable[[_Track], bool]) -> list[PlateEvent]:
        events = []
        for track in [t for t in self._tracks if done(t)]:
            self._tracks.remove(track)
            if len(track.sightings) < self._min_frames:
                continue
            event = vote(track.sightings)
            text, at = event.best.plate.canonical, event.best.at
            last = self._reported.get(text)
            if last is not None and at - last < self._repeat_after_s:
                continue
            self._reported[text] = at
            events.append(event)
        if events:
            newest = max(e.best.at for e in events)
            self._reported = {
                t: at for t, at in self._reported.items() if newest - at < self._repeat_after_s
            }
        return events
