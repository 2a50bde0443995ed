"""Which watchlist entries a plate read matches, how, and how surely.

An exact match is the canonical text itself. A camera also misreads: a near match is the
same plate up to OCR confusions (0/O/D/Q, 8/B, 5/S, 2/Z, 1/I/L, 6/G) or up to one
character changed, added or left out. Every lookup is a dictionary probe, never a scan, so
a read takes the same few probes however long the watchlist: the exact key, the key
with confusable characters folded together, and the one-character deletions of both the
read and the entries (symmetric deletion: any two texts one edit apart share one).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from collector.police.confusions import fold
from collector.police.watchlist import WatchEntry

SCORES = {"exact": 1.0, "confusion": 0.9, "one_character": 0.75}


class MatchKind(StrEnum):
    EXACT = "exact"
    CONFUSION = "confusion"
    ONE_CHARACTER = "one_character"


@dataclass(frozen=True)
class Match:
    entry: WatchEntry
    kind: MatchKind
    score: float


def _neighbours(text: str) -> set[str]:
    """The text and its one-character deletions: two texts one substitution, insertion or
    deletion apart always share one of these keys."""
    return {text} | {f"{text[:i]}{text[i + 1 :]}" for i in range(len(text))}


def _one_apart(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


class Matcher:
    """An index of the watchlist, rebuilt whenever the watchlist changes."""

    def __init__(self, entries: Iterable[WatchEntry]) -> None:
        self._exact: dict[str, WatchEntry] = {}
        self._folded: dict[str, list[WatchEntry]] = defaultdict(list)
        self._near: dict[str, list[WatchEntry]] = defaultdict(list)
        for entry in entries:
            self._exact[entry.plate] = entry
            self._folded[fold(entry.plate)].append(entry)
            for key in _neighbours(entry.plate):
                self._near[key].append(entry)

    def __len__(self) -> int:
        return len(self._exact)

    def match(self, plate: str, now: datetime) -> list[Match]:
        """The active entries `plate` matches, the surest first, each entry once."""
        found: dict[str, Match] = {}

        def take(entry: WatchEntry, kind: MatchKind) -> None:
            if entry.active(now) and entry.plate not in found:
                found[entry.plate] = Match(entry, kind, SCORES[kind.value])

        if (entry := self._exact.get(plate)) is not None:
            take(entry, MatchKind.EXACT)
        for entry in self._folded.get(fold(plate), ()):
            take(entry, MatchKind.CONFUSION)
        for key in _neighbours(plate):
            for entry in self._near.get(key, ()):
                if _one_apart(plate, entry.plate):
                    take(entry, MatchKind.ONE_CHARACTER)
        return sorted(found.values(), key=lambda m: -m.score)
