"""The outbox keeps messages and sequence numbers across restarts, in order."""

from datetime import UTC, datetime

import pytest

from edge_agent.outbox import Outbox
from iotwire import decode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel


def telemetry(seq: int, value: float = 1.0) -> Telemetry:
    sample = Sample(
        sensor="s",
        ts=datetime(2026, 11, 22, tzinfo=UTC),
        readings=(Reading(parameter="p", value=value, unit="u"),),
    )
    return Telemetry(device="dev-1", seq=seq, clock=ClockSync.SYNCED, samples=(sample,))


def test_sequence_numbers_survive_a_restart_and_never_repeat(tmp_path):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    assert [outbox.append(Channel.TELEMETRY, telemetry) for _ in range(3)] == [1, 2, 3]
    outbox.remove([1, 2, 3])
    outbox.close()

    reopened = Outbox(path)
    assert reopened.last_seq() == 3
    assert reopened.append(Channel.TELEMETRY, telemetry) == 4
    reopened.close()


def test_messages_wait_in_order_until_removed(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    for value in range(5):
        outbox.append(Channel.TELEMETRY, lambda seq, v=value: telemetry(seq, v))
    first = outbox.peek(3)
    assert [e.seq for e in first] == [1, 2, 3]
    assert decode(first[1].payload, Telemetry).samples[0].readings[0].value == 1.0
    outbox.remove(e.seq for e in first)
    assert [e.seq for e in outbox.peek(10)] == [4, 5]
    assert outbox.depth() == 2


def test_a_failed_build_commits_nothing_and_wastes_no_number(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")

    def broken(seq: int) -> Telemetry:
        raise ValueError("sensor value could not be encoded")

    with pytest.raises(ValueError, match="could not be encoded"):
        outbox.append(Channel.TELEMETRY, broken)
    assert outbox.depth() == 0
    assert outbox.append(Channel.TELEMETRY, telemetry) == 1


def test_committed_messages_survive_an_unclean_close(tmp_path):
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path)
    first.append(Channel.TELEMETRY, telemetry)
    # No close(): a second handle, as after a crash, sees the committed message.
    second = Outbox(path)
    assert [e.seq for e in second.peek(10)] == [1]
