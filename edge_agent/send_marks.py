"""When the broker acknowledged each message the outbox has not yet marked sent on disk.

Marking a row sent rewrites it, payload and indexes included, in a write of its own: in a
drain that was a third of the agent's time, for marks nearly all forgotten again a moment
later, when the collector confirms the rows and they are deleted. So a message sent for the
first time is marked here, in memory, and on disk only if it is still there when the mark
matters there (edge_agent/outbox.py says when): a mark lost with a crash makes the message
go out again after the restart, a duplicate the collector's ledger counts, never a loss.

Marks are taken in send order, a prefix of each channel's unsent rows at a time, and a new
row's id is above every row there is; so on disk, a channel's unsent rows that are not
marked here are exactly those above its highest mark (`floors`). A write that fails for
want of disk can leave an unsent row below it (a mark it could not write, a message it
could not forget): the outbox then `distrust`s the floors, and looks past every mark, row
by row, until none is left.
"""

from collections.abc import Iterable
from typing import NamedTuple

from iotwire.topics import Channel


class Mark(NamedTuple):
    sent: float
    channel: Channel
    epoch: str
    seq: int


class SendMarks:
    def __init__(self) -> None:
        self._marks: dict[int, Mark] = {}  # by row id, in the order they were taken
        self._trusted = True

    def __len__(self) -> int:
        return len(self._marks)

    def __contains__(self, row: object) -> bool:
        return row in self._marks

    def add(self, rows: Iterable[tuple[int, Mark]]) -> None:
        self._marks.update(rows)

    def distrust(self) -> None:
        """Unsent rows may lie below a floor: no floors until no mark is left."""
        self._trusted = False

    def floors(self) -> dict[Channel, int]:
        """Each channel's highest marked row, below which every unsent row is marked;
        none while distrusted."""
        if not self._trusted:
            return {}
        floors: dict[Channel, int] = {}
        for row, mark in self._marks.items():
            if row > floors.get(mark.channel, 0):
                floors[mark.channel] = row
        return floors

    def newest_between(self, first: int, last: int) -> float:
        """The latest send time marked on rows `first` through `last` (-1 for none)."""
        return max((m.sent for row, m in self._marks.items() if first <= row <= last), default=-1)

    def forget_between(self, first: int, last: int) -> None:
        """The rows `first` through `last` are gone from disk."""
        if last - first < len(self._marks):
            for row in range(first, last + 1):
                self._marks.pop(row, None)
        else:
            self._marks = {r: m for r, m in self._marks.items() if not first <= r <= last}
        self._trusted = self._trusted or not self._marks

    def forget(self, rows: Iterable[int]) -> None:
        for row in rows:
            self._marks.pop(row, None)
        self._trusted = self._trusted or not self._marks

    def taken_by(self, cutoff: float) -> list[tuple[int, Mark]]:
        """Marks made at `cutoff` or before, in row order."""
        return sorted((row, m) for row, m in self._marks.items() if m.sent <= cutoff)

    def oldest(self, count: int) -> list[tuple[int, Mark]]:
        """The `count` marks made first."""
        return sorted(self._marks.items(), key=lambda item: (item[1].sent, item[0]))[:count]
