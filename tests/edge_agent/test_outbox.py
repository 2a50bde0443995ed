"""The outbox keeps messages and sequence numbers across restarts, in order, in an epoch
of its own, until the collector confirms them; its bounds give way by policy."""

import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import OutboxSettings
from edge_agent.outbox import Outbox
from iotwire import decode, encode
from iotwire.messages import ClockSync, Health, Reading, Sample, Telemetry
from iotwire.topics import Channel
from tests.helpers import health

FORGET_ON_ACK = OutboxSettings(delete_on="broker_ack")


def telemetry(seq: int, value: float = 1.0, readings: int = 1) -> Telemetry:
    sample = Sample(
        sensor="s",
        ts=datetime(2026, 11, 22, tzinfo=UTC),
        readings=tuple(Reading(parameter=f"p{i}", value=value, unit="u") for i in range(readings)),
    )
    return Telemetry(device="dev-1", seq=seq, clock=ClockSync.SYNCED, samples=(sample,))


def sample(seq: int) -> Telemetry:
    """A station's sample of thirty parameters, about 1.8 kB: a small bound is reached in
    a hundred appends, and each append is an fsync."""
    return telemetry(seq, readings=30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_sequence_numbers_survive_a_restart_and_never_repeat(tmp_path):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    assert [outbox.append(Channel.TELEMETRY, telemetry) for _ in range(3)] == [1, 2, 3]
    assert outbox.confirm(outbox.epoch, [(1, 3)]) == 3
    assert outbox.depth() == 0
    outbox.close()

    reopened = Outbox(path)
    assert reopened.last_seq() == 3
    assert reopened.append(Channel.TELEMETRY, telemetry) == 4
    reopened.close()


def test_an_outbox_is_born_with_an_epoch_it_keeps_and_stamps_on_what_it_streams(tmp_path):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    epoch = outbox.epoch
    assert re.fullmatch("[0-9a-f]{16}", epoch)
    outbox.append(Channel.TELEMETRY, telemetry)
    outbox.append(Channel.HEALTH, health)
    entries = outbox.peek(10)
    assert [(e.epoch, e.seq) for e in entries] == [(epoch, 1), (epoch, 2)]
    assert decode(entries[0].payload, Telemetry).epoch == epoch
    assert decode(entries[1].payload, Health).epoch == epoch
    outbox.close()

    reopened = Outbox(path)
    assert reopened.epoch == epoch
    reopened.close()
    # A box whose state is lost (a new SD card) starts a new epoch from 1.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    fresh = Outbox(path)
    assert fresh.epoch != epoch
    assert fresh.append(Channel.TELEMETRY, telemetry) == 1
    assert Outbox(tmp_path / "other.sqlite").epoch not in (epoch, fresh.epoch)


def legacy_outbox(path: Path, seqs: list[int], dropped: int) -> list[bytes]:
    """An outbox as the agent before epochs left it, by hand: its schema, messages queued
    with their numbers as keys, payloads without an epoch. Returns the payloads."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            payload BLOB NOT NULL,
            created REAL NOT NULL
        );
        CREATE INDEX outbox_by_channel ON outbox (channel, seq);
        CREATE INDEX outbox_by_age ON outbox (created);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """
    )
    payloads = []
    for seq in seqs:
        fields = json.loads(encode(telemetry(seq)))
        del fields["epoch"]
        payloads.append(json.dumps(fields).encode())
        db.execute(
            "INSERT INTO outbox VALUES (?, 'telemetry', ?, ?)",
            (seq, payloads[-1], 1_800_000_000.0),
        )
    db.execute(
        "INSERT INTO counters VALUES ('next_seq', ?), ('dropped', ?)", (seqs[-1] + 1, dropped)
    )
    db.close()
    return payloads


def test_an_outbox_from_before_epochs_sends_its_queue_first_then_counts_from_1(tmp_path):
    path = tmp_path / "outbox.sqlite"
    payloads = legacy_outbox(path, [41, 42, 43], dropped=5)
    outbox = Outbox(path)
    assert (outbox.last_seq(), outbox.depth(), outbox.dropped()) == (0, 3, 5)
    assert outbox.append(Channel.TELEMETRY, telemetry) == 1
    assert outbox.append(Channel.TELEMETRY, telemetry) == 2
    entries = outbox.peek(10)
    assert [(e.epoch, e.seq) for e in entries] == [
        ("", 41),
        ("", 42),
        ("", 43),
        (outbox.epoch, 1),
        (outbox.epoch, 2),
    ]
    assert [e.payload for e in entries[:3]] == payloads  # as queued, no epoch added
    # Nothing confirms a message without an epoch: the broker's acknowledgement is its end.
    outbox.sent(entries[:4])
    assert (outbox.depth(), outbox.unconfirmed()) == (2, 1)
    outbox.close()

    reopened = Outbox(path)  # migrated once: the epoch and the numbers stay
    assert reopened.epoch == outbox.epoch
    assert [(e.epoch, e.seq) for e in reopened.peek(10)] == [(outbox.epoch, 2)]
    assert reopened.confirm(reopened.epoch, [(1, 2)]) == 2
    assert (reopened.append(Channel.TELEMETRY, telemetry), reopened.dropped()) == (3, 5)


def test_a_sent_message_stays_until_confirmed_and_goes_out_again_if_it_is_not(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(resend_after_s=20), clock)
    for _ in range(3):
        outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(10))
    assert outbox.peek(10) == []
    assert (outbox.depth(), outbox.unconfirmed()) == (3, 3)

    # Nothing confirmed at all: the collector is away and the broker keeps its queue.
    # Sending it all again would only double that queue.
    clock.now += 20.1
    assert outbox.peek(10) == []
    outbox.append(Channel.TELEMETRY, telemetry)
    assert [e.seq for e in outbox.peek(10)] == [4]  # only the new one is due
    outbox.sent(outbox.peek(10))
    # The collector confirms a message sent after them: they were lost on the way.
    assert outbox.confirm(outbox.epoch, [(4, 4)]) == 1
    again = outbox.peek(10)
    assert [e.seq for e in again] == [1, 2, 3]  # in order
    outbox.sent(again)

    assert outbox.confirm(outbox.epoch, [(1, 2)]) == 2
    clock.now += 19.9
    assert outbox.peek(10) == []  # sent again too recently
    clock.now += 0.2
    assert [e.seq for e in outbox.peek(10)] == [3]
    assert outbox.confirm(outbox.epoch, [(3, 3), (4, 9)]) == 1
    assert outbox.confirm(outbox.epoch, [(1, 9)]) == 0  # heard twice: nothing left
    assert outbox.confirm("0123456789abcdef", [(1, 9)]) == 0  # not this box's epoch
    # A confirmation may overtake the acknowledgement (or the publish itself).
    outbox.append(Channel.TELEMETRY, telemetry)
    assert outbox.confirm(outbox.epoch, [(5, 5)]) == 1
    assert (outbox.depth(), outbox.unconfirmed()) == (0, 0)


def test_a_window_confirmed_in_pieces_by_a_collector_far_behind_is_not_sent_twice(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(resend_after_s=20), clock)
    for _ in range(6):
        outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(3))
    clock.now += 1
    outbox.sent(outbox.peek(3))
    # The collector, a minute behind the broker, commits the first window in two pieces.
    clock.now += 60
    assert outbox.confirm(outbox.epoch, [(1, 2)]) == 2
    assert outbox.peek(10) == []  # 3 is right behind 2 at the collector
    clock.now += 19.9
    assert outbox.peek(10) == []
    assert outbox.confirm(outbox.epoch, [(3, 3)]) == 1
    clock.now += 20
    assert outbox.peek(10) == []  # nothing unconfirmed sent with or before a confirmed one
    # The second window's first piece is confirmed; its last message never arrives.
    assert outbox.confirm(outbox.epoch, [(4, 5)]) == 2
    clock.now += 19.9
    assert outbox.peek(10) == []
    clock.now += 0.2
    assert [e.seq for e in outbox.peek(10)] == [6]


def test_marks_and_confirmations_touch_only_their_own_messages(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    for _ in range(5):
        outbox.append(Channel.TELEMETRY, telemetry)
    window = outbox.peek(10)
    # The last one is confirmed before the broker's acknowledgement and its id, the
    # highest, goes to the next message: marking the window must not mark that one.
    assert outbox.confirm(outbox.epoch, [(5, 5)]) == 1
    outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(window)
    assert outbox.unconfirmed() == 4
    assert [e.seq for e in outbox.peek(10)] == [6]
    # Ranges with gaps between them forget what they name, not what lies between.
    assert outbox.confirm(outbox.epoch, [(1, 1), (3, 4)]) == 3
    assert outbox.depth() == 2
    assert outbox.confirm(outbox.epoch, [(2, 2), (6, 9)]) == 2
    assert outbox.depth() == 0


def test_a_range_is_forgotten_a_write_at_a_time_and_only_what_it_names(tmp_path, monkeypatch):
    # Two rows a write, as on a disk short of room: a range of many pieces, one with a
    # gap inside it, and a range as wide as the wire allows, which costs what it finds.
    monkeypatch.setattr("edge_agent.outbox._ROWS_PER_ROOMY_WRITE", 2)
    monkeypatch.setattr("edge_agent.outbox._ROWS_PER_WRITE", 2)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    for _ in range(9):
        outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(10))
    assert outbox.confirm(outbox.epoch, [(4, 4)]) == 1
    assert outbox.confirm(outbox.epoch, [(2, 8)]) == 6
    assert outbox.unconfirmed() == outbox.depth() == 2  # 1 and 9
    assert outbox.confirm(outbox.epoch, [(0, 2**63 - 1)]) == 2
    assert outbox.depth() == 0


def test_with_delete_on_broker_ack_the_acknowledgement_is_the_end(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", FORGET_ON_ACK, clock)
    for value in range(5):
        outbox.append(Channel.TELEMETRY, lambda seq, v=value: telemetry(seq, v))
    first = outbox.peek(3)
    assert [e.seq for e in first] == [1, 2, 3]
    assert decode(first[1].payload, Telemetry).samples[0].readings[0].value == 1.0
    outbox.sent(first)
    clock.now += 3600
    assert [e.seq for e in outbox.peek(10)] == [4, 5]
    assert (outbox.depth(), outbox.unconfirmed()) == (2, 0)


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


def outage(outbox: Outbox, clock: FakeClock, hours: float) -> dict[Channel, list[int]]:
    """An outage on an air station: a sample every five minutes, health every half hour."""
    kept: dict[Channel, list[int]] = {Channel.TELEMETRY: [], Channel.HEALTH: []}
    for tick in range(int(hours * 12)):
        clock.now += 300
        kept[Channel.TELEMETRY].append(outbox.append(Channel.TELEMETRY, sample))
        if tick % 6 == 0:
            kept[Channel.HEALTH].append(outbox.append(Channel.HEALTH, health))
    return kept


def test_a_long_outage_stays_inside_the_byte_bound_and_counts_what_it_dropped(tmp_path):
    clock = FakeClock()
    limits = OutboxSettings(max_mb=0.3, max_age_h=48)
    outbox = Outbox(tmp_path / "outbox.sqlite", limits, clock)
    largest = 0
    produced: dict[Channel, list[int]] = {Channel.TELEMETRY: [], Channel.HEALTH: []}
    for _ in range(12):  # hour by hour, so the bound is checked along the way
        for channel, seqs in outage(outbox, clock, 1).items():
            produced[channel] += seqs
        largest = max(largest, outbox.size_bytes())
    total = sum(len(seqs) for seqs in produced.values())
    left = outbox.peek(100_000)
    payloads = sum(len(e.payload) for e in left)
    print(
        f"produced {total}, kept {len(left)} ({payloads} bytes of payload), "
        f"largest {largest} bytes on disk, dropped {outbox.dropped()}"
    )
    # Pages in use plus the write-ahead log: what the box's disk actually gives.
    assert payloads < largest <= 0.3e6
    assert payloads > 0.3e6 / 3  # the log and the indexes do not eat the bound
    assert outbox.dropped() == total - len(left) > 0
    # Health gave way first, then the oldest telemetry: what is left is the newest run,
    # with at most the heartbeats made since the last drop.
    kept = [e.seq for e in left if e.channel is Channel.TELEMETRY]
    assert kept == produced[Channel.TELEMETRY][-len(kept) :]
    assert all(e.seq > kept[0] for e in left if e.channel is Channel.HEALTH)
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
    produced = outage(outbox, clock, 12)[Channel.TELEMETRY]
    left = outbox.peek(100_000)
    kept = [e.seq for e in left if e.channel is Channel.TELEMETRY]
    start = 0
    while start < len(kept) and kept[start] == produced[start]:
        start += 1
    # Drops free whole pages, the newest page's worth at a time, so a few messages made
    # since an earlier drop are still there too, behind the start of the outage.
    later = kept[start:]
    print(f"kept the first {start} of {len(produced)}, and {len(later)} later ones")
    assert start > 5 * len(later)
    assert later == sorted(later)
    assert all(e.seq > kept[start - 1] for e in left if e.channel is Channel.HEALTH)
    assert outbox.size_bytes() <= 0.2e6


def test_messages_older_than_the_age_bound_are_dropped_and_counted(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(max_age_h=1), clock)
    produced = outage(outbox, clock, 3)
    left = outbox.peek(100_000)
    assert min(e.seq for e in left) == produced[Channel.TELEMETRY][-13]  # the last hour
    assert outbox.dropped() == sum(map(len, produced.values())) - len(left)


def test_a_message_held_by_the_uplink_is_never_dropped(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(max_mb=0.2), clock)
    first = outbox.append(Channel.TELEMETRY, sample)
    [held] = outbox.peek(1)
    for _ in range(80):
        outbox.append(Channel.TELEMETRY, sample)
    assert outbox.dropped() > 0
    assert outbox.peek(1)[0].seq == held.seq == first


def test_the_bounds_drop_what_was_never_sent_before_what_awaits_confirmation(tmp_path):
    path = tmp_path / "outbox.sqlite"
    clock = FakeClock()
    outbox = Outbox(path, OutboxSettings(max_mb=0.5), clock)
    for _ in range(100):
        outbox.append(Channel.TELEMETRY, sample)
    outbox.sent(outbox.peek(100))  # the broker has them; the collector has not confirmed
    for _ in range(20):
        outbox.append(Channel.TELEMETRY, sample)
    assert (outbox.dropped(), outbox.released(), outbox.unconfirmed()) == (0, 0, 100)
    outbox.close()

    # Restarted with a tighter bound: every message never sent goes first (the new one
    # too), and only then the oldest sent ones, counted apart: the store may hold them.
    smaller = Outbox(path, OutboxSettings(max_mb=0.2), clock)
    smaller.append(Channel.TELEMETRY, sample)
    released = smaller.released()
    print(f"dropped {smaller.dropped()}, released {released}")
    assert smaller.dropped() == 21
    assert 0 < released < 100
    assert smaller.size_bytes() <= 0.2e6
    assert smaller.unconfirmed() == smaller.depth() == 100 - released
    # The oldest went first: the ones left are the newest that were sent.
    assert smaller.confirm(smaller.epoch, [(1, released)]) == 0
    assert smaller.confirm(smaller.epoch, [(1, 121)]) == 100 - released
    smaller.close()
    assert Outbox(path).released() == released


def sent_on_disk(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT count(*) FROM outbox WHERE sent >= 0").fetchone()
    return int(count)


def test_a_first_send_is_marked_on_disk_only_when_that_matters(tmp_path, monkeypatch):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    for _ in range(5):
        outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(10))
    assert (outbox.peek(10), outbox.unconfirmed(), sent_on_disk(path)) == ([], 5, 0)
    # Killed now, the agent would send them again after its restart: a duplicate the
    # collector counts, never a loss.
    assert [e.seq for e in Outbox(path).peek(10)] == [1, 2, 3, 4, 5]
    outbox.append(Channel.TELEMETRY, telemetry)
    assert [e.seq for e in outbox.peek(10)] == [6]  # only what was never sent
    assert outbox.confirm(outbox.epoch, [(1, 2)]) == 2
    outbox.close()  # a clean stop writes the marks: nothing goes out twice
    assert sent_on_disk(path) == 3
    reopened = Outbox(path)
    assert ([e.seq for e in reopened.peek(10)], reopened.unconfirmed()) == ([6], 3)

    # Past the most held in memory, the oldest marks go to disk.
    monkeypatch.setattr("edge_agent.outbox._MARKS_HELD", 2)
    for _ in range(4):
        reopened.append(Channel.TELEMETRY, telemetry)
    reopened.sent(reopened.peek(10))
    assert (reopened.unconfirmed(), sent_on_disk(path)) == (8, 6)


def test_a_message_marked_sent_in_memory_that_the_bounds_drop_counts_as_released(tmp_path):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(max_age_h=1), clock)
    for _ in range(5):
        outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(3))
    clock.now += 3601
    outbox.append(Channel.TELEMETRY, telemetry)
    assert (outbox.released(), outbox.dropped(), outbox.unconfirmed()) == (3, 2, 0)
    assert [e.seq for e in outbox.peek(10)] == [6]


def disk_full() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    return error


def test_a_write_that_fails_for_want_of_disk_leaves_no_message_unsent_and_unseen(
    tmp_path, monkeypatch
):
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings(resend_after_s=20), clock)
    for _ in range(4):
        outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(10))

    # A drop by the bounds rolled back by a full disk: the rows and their marks stay.
    def drop_then_full() -> None:
        outbox._delete([1, 2])
        raise disk_full()

    with pytest.raises(sqlite3.OperationalError):
        outbox._write(drop_then_full, durable=False)
    assert (outbox.depth(), outbox.unconfirmed()) == (4, 4)

    # The collector lost 1, 2 and 4: once a later message is confirmed and they are due,
    # they go out again.
    assert outbox.confirm(outbox.epoch, [(3, 3)]) == 1
    outbox.append(Channel.TELEMETRY, telemetry)
    outbox.sent(outbox.peek(10))
    assert outbox.confirm(outbox.epoch, [(5, 5)]) == 1
    clock.now += 20.1
    assert [e.seq for e in outbox.peek(10)] == [1, 2, 4]

    # A mark that cannot be written (here: past the most held) is forgotten, and the
    # message goes out again as new rather than wait for room.
    outbox.append(Channel.TELEMETRY, telemetry)
    monkeypatch.setattr("edge_agent.outbox._MARKS_HELD", 0)
    writes = outbox._write_despite_full
    monkeypatch.setattr(outbox, "_write_despite_full", lambda work, durable: None)
    outbox.sent(outbox.peek(10))
    monkeypatch.setattr(outbox, "_write_despite_full", writes)
    assert 6 in [e.seq for e in outbox.peek(10)]
