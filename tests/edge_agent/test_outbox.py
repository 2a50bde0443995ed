"""The outbox keeps messages and sequence numbers across restarts, in order."""

from datetime import UTC, datetime

import pytest

from edge_agent.config import OutboxSettings
from edge_agent.outbox import Outbox
from iotwire import decode
from iotwire.messages import ClockSync, Health, Reading, Sample, Telemetry
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


def health(seq: int) -> Health:
    return Health(
        device="dev-1",
        seq=seq,
        ts=datetime(2026, 11, 22, tzinfo=UTC),
        clock=ClockSync.SYNCED,
        boot_id="b1",
        uptime_s=1.0,
        load1=0.1,
        mem_used_pct=10.0,
        disk_used_pct=10.0,
        outbox_depth=0,
        outbox_dropped=0,
        source_errors={},
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def outage(outbox: Outbox, clock: FakeClock, hours: float) -> dict[Channel, list[int]]:
    """An outage on an air station: a sample every 10 s, health every minute."""
    kept: dict[Channel, list[int]] = {Channel.TELEMETRY: [], Channel.HEALTH: []}
    for tick in range(int(hours * 360)):
        clock.now += 10
        kept[Channel.TELEMETRY].append(outbox.append(Channel.TELEMETRY, telemetry))
        if tick % 6 == 0:
            kept[Channel.HEALTH].append(outbox.append(Channel.HEALTH, health))
    return kept


def test_a_day_long_outage_stays_inside_the_byte_bound_and_counts_what_it_dropped(tmp_path):
    clock = FakeClock()
    limits = OutboxSettings(max_mb=0.5, max_age_h=48)
    outbox = Outbox(tmp_path / "outbox.sqlite", limits, clock)
    largest = 0
    produced = outage(outbox, clock, 24)
    largest = max(largest, outbox.size_bytes())
    total = sum(len(seqs) for seqs in produced.values())
    left = outbox.peek(100_000)
    on_disk = sum(len(e.payload) for e in left)
    print(f"produced {total}, kept {len(left)} ({on_disk} bytes), dropped {outbox.dropped()}")
    assert on_disk == outbox.size_bytes() <= 0.5e6
    assert outbox.dropped() == total - len(left) > 0
    # Health gave way first, then the oldest telemetry: what is left is the newest run.
    kept = [e.seq for e in left]
    assert all(e.channel is Channel.TELEMETRY for e in left)
    assert kept == produced[Channel.TELEMETRY][-len(kept) :]
    # The count is on disk: a restarted agent reports the same number.
    dropped = outbox.dropped()
    outbox.close()
    assert Outbox(tmp_path / "outbox.sqlite", limits, clock).dropped() == dropped


def test_newest_first_keeps_the_start_of_the_outage(tmp_path):
    clock = FakeClock()
    limits = OutboxSettings(
        max_mb=0.2, drop_order=("health", "telemetry", "plate"), drop_within="newest"
    )
    outbox = Outbox(tmp_path / "outbox.sqlite", limits, clock)
    produced = outage(outbox, clock, 6)
    left = [e.seq for e in outbox.peek(100_000)]
    assert left == produced[Channel.TELEMETRY][: len(left)]
    assert outbox.size_bytes() <= 0.2e6


def test_messages_older_than_the_age_bound_are_dropped_and_counted(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(max_age_h=1), clock)
    produced = outage(outbox, clock, 3)
    left = outbox.peek(100_000)
    assert min(e.seq for e in left) == produced[Channel.TELEMETRY][-361]  # the last hour
    assert outbox.dropped() == sum(map(len, produced.values())) - len(left)


def test_a_message_held_by_the_uplink_is_never_dropped(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(max_mb=0.01), clock)
    first = outbox.append(Channel.TELEMETRY, telemetry)
    [held] = outbox.peek(1)
    for _ in range(500):
        outbox.append(Channel.TELEMETRY, telemetry)
    assert outbox.peek(1)[0].seq == held.seq == first
