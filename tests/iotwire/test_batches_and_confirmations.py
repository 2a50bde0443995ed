"""The two wire additions of end-to-end delivery: `Committed` names what the collector
holds as inclusive ranges, and a `Batch` is committed payloads joined, decoded as the
messages they were."""

from datetime import UTC, datetime

import pytest

from iotwire import decode, encode, marked
from iotwire.batches import batch_payload, batch_sizes
from iotwire.codec import MAX_PAYLOAD_BYTES, DecodeError, DecodeReason
from iotwire.commits import seq_ranges
from iotwire.messages import (
    MAX_BATCH_MESSAGES,
    MAX_COMMITTED_RANGES,
    Batch,
    ClockSync,
    Committed,
    Reading,
    Sample,
    Telemetry,
)
from tests.helpers import health as health_message

EPOCH = "0123456789abcdef"


def telemetry(seq: int, device: str = "air-1") -> Telemetry:
    sample = Sample(
        sensor="aqms",
        ts=datetime(2026, 11, 30, 8, 0, seq % 60, tzinfo=UTC),
        readings=(Reading(parameter="pm10", value=float(seq), unit="µg/m³"),),
    )
    return Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,), epoch=EPOCH)


def test_sequence_numbers_become_the_fewest_inclusive_ranges():
    assert seq_ranges([]) == []
    assert seq_ranges([5, 3, 4, 4, 9, 1]) == [((1, 1), (3, 5), (9, 9))]
    scattered = range(1, 4 * MAX_COMMITTED_RANGES, 2)  # every other number
    groups = seq_ranges(scattered)
    assert [len(g) for g in groups] == [MAX_COMMITTED_RANGES, MAX_COMMITTED_RANGES]
    assert [first for g in groups for first, _ in g] == list(scattered)
    for group in groups:  # each fits one message
        Committed(device="air-1", epoch=EPOCH, ranges=group)


def test_a_confirmation_with_a_range_backwards_or_a_bad_epoch_is_refused():
    good = Committed(device="air-1", epoch=EPOCH, ranges=((1, 10),))
    assert decode(encode(good), Committed) == good
    backwards = encode(good).replace(b"[[1,10]]", b"[[10,1]]")
    with pytest.raises(DecodeError) as refused:
        decode(backwards, Committed)
    assert refused.value.reason is DecodeReason.INVALID_VALUE
    with pytest.raises(DecodeError):
        decode(encode(good).replace(EPOCH.encode(), b"NOT-HEX-AT-ALL!!"), Committed)
    with pytest.raises(DecodeError):
        decode(encode(good).replace(b"[[1,10]]", b"[]"), Committed)


def test_a_batch_decodes_as_the_messages_it_joined_backlog_marks_included():
    members = [encode(telemetry(1)), marked(encode(telemetry(2)))]
    health = health_message(3, "air-1", EPOCH)
    batch = decode(batch_payload("air-1", [*members, encode(health)]), Batch)
    assert batch.device == "air-1"
    assert [m.seq for m in batch.messages] == [1, 2, 3]
    assert [m.backlog for m in batch.messages] == [False, True, False]
    assert batch.messages[0] == telemetry(1)
    assert batch.messages[2] == health


def test_a_batch_holding_a_plate_read_or_nothing_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        batch_payload("air-1", [])
    command_like = b'{"v":1,"kind":"status","device":"air-1","seq":1}'
    with pytest.raises(DecodeError):
        decode(batch_payload("air-1", [encode(telemetry(1)), command_like]), Batch)


def test_batches_are_cut_to_fit_one_payload_and_the_most_messages():
    sizes = [100_000] * 5 + [10] * (MAX_BATCH_MESSAGES + 5) + [MAX_PAYLOAD_BYTES]
    counts = batch_sizes("air-1", sizes)
    # Two of 100 kB fit, three do not; the fifth takes the small ones up to the most a
    # batch holds; the largest payload goes alone.
    assert counts == [2, 2, MAX_BATCH_MESSAGES, 6, 1]
    payloads = [b"{}" * (s // 2) for s in sizes[:5]]
    assert len(batch_payload("air-1", payloads[:2])) <= MAX_PAYLOAD_BYTES
