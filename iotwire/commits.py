"""Sequence numbers as inclusive ranges: how a `Committed` message names what it confirms.

A batch of a box's messages is nearly always one run of consecutive numbers, so a
confirmation costs a few bytes whatever the batch size; a box that resent scattered
messages still gets them back exactly.
"""

from collections.abc import Iterable

from iotwire.messages import MAX_COMMITTED_RANGES, SeqRange


def seq_ranges(seqs: Iterable[int]) -> list[tuple[SeqRange, ...]]:
    """The numbers as sorted inclusive ranges, split into groups that each fit one
    `Committed` message."""
    ranges: list[SeqRange] = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return [
        tuple(ranges[i : i + MAX_COMMITTED_RANGES])
        for i in range(0, len(ranges), MAX_COMMITTED_RANGES)
    ]
