"""The outbox on a real 5 MB filesystem: it drops by policy before the disk is full, and
when another writer fills it anyway, no append raises; what cannot be stored is counted,
and once there is room again it stores and drains as before."""

import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import OutboxSettings
from edge_agent.outbox import Outbox
from iotwire import decode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from iotwire.topics import Channel
from testbed.disks import small_filesystem

DISK_BYTES = 5 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 5 MB filesystem for the box's state, as on a small SD card partition."""
    with small_filesystem(tmp_path / "disk", DISK_BYTES // (1024 * 1024)) as mount:
        yield mount


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def telemetry(readings: int) -> Callable[[int], Telemetry]:
    def build(seq: int) -> Telemetry:
        sample = Sample(
            sensor="s",
            ts=datetime(2026, 11, 22, tzinfo=UTC),
            readings=tuple(
                Reading(parameter=f"p{i}", value=float(seq), unit="u") for i in range(readings)
            ),
        )
        return Telemetry(device="dev-1", seq=seq, clock=ClockSync.SYNCED, samples=(sample,))

    return build


SMALL = telemetry(10)  # about 0.6 kB
LARGE = telemetry(200)  # about 12 kB: more than the write-ahead log has room for


class Hog:
    """Another writer on the same filesystem (logs, an update) taking every byte left."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def take_all(self) -> None:
        block = b"\0" * 4096
        try:
            while True:
                os.write(self._fd, block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise

    def leave(self) -> None:
        os.close(self._fd)
        self.path.unlink()


def assert_accounted(outbox: Outbox) -> list[int]:
    """Every number handed out is either counted as dropped or queued, readable, with
    the payload it was made with; returns the queued numbers."""
    entries = outbox.peek(100_000)
    for entry in entries:
        message = decode(entry.payload, Telemetry)
        assert (message.seq, message.epoch) == (entry.seq, outbox.epoch)
        assert message.samples[0].readings[0].value == entry.seq
    queued = [e.seq for e in entries]
    assert queued == sorted(set(queued))
    assert set(queued) <= set(range(1, outbox.last_seq() + 1))
    assert outbox.last_seq() == len(queued) + outbox.dropped()
    return queued


def test_a_disk_smaller_than_the_bound_fills_by_policy_and_keeps_its_reserve(small_disk):
    # The default bound, 256 MB, is far beyond this disk: the disk is the bound.
    path = small_disk / "outbox.sqlite"
    outbox = Outbox(path)
    least_free = DISK_BYTES
    for n in range(1500):  # about 10 MB of pages, twice the disk
        outbox.append(Channel.TELEMETRY, LARGE if n % 4 == 0 else telemetry(40))
        least_free = min(least_free, free_bytes(small_disk))
    print(
        f"queued {outbox.depth()}, dropped {outbox.dropped()}, {outbox.size_bytes()} bytes, "
        f"least free {least_free}"
    )
    assert outbox.dropped() > 0
    assert outbox.size_bytes() > 0.6 * DISK_BYTES  # the disk is used, not wasted
    # Half a megabyte is kept free, half of it as the outbox's own ballast, less at most
    # the pages of one message, stored before those of the messages it displaces are free.
    ballast = (small_disk / "outbox.sqlite.ballast").stat().st_size
    assert ballast == 250_000
    assert least_free >= 500_000 - ballast - 16 * 1024
    queued = assert_accounted(outbox)
    # Drained, it takes messages as before.
    outbox.sent(outbox.peek(100_000))
    assert outbox.confirm(outbox.epoch, [(1, outbox.last_seq())]) == len(queued)
    assert outbox.append(Channel.TELEMETRY, SMALL) == 1501
    outbox.close()


def test_another_writer_filling_the_disk_costs_counted_messages_never_an_exception(
    small_disk, caplog
):
    caplog.set_level(logging.INFO, logger="edge_agent.outbox")
    path = small_disk / "outbox.sqlite"
    outbox = Outbox(path, OutboxSettings(resend_after_s=20))
    for _ in range(50):
        outbox.append(Channel.TELEMETRY, SMALL)
    hog = Hog(small_disk / "update.part")
    for n in range(200):
        hog.take_all()  # whatever the outbox frees, the hog takes at once
        outbox.append(Channel.TELEMETRY, LARGE if n % 2 else SMALL)
    queued = assert_accounted(outbox)
    lost = outbox.dropped()
    print(f"queued {len(queued)}, dropped {lost} of {outbox.last_seq()}")
    assert 0 < lost < outbox.last_seq()
    [full] = [r for r in caplog.records if r.levelno == logging.ERROR]  # once, not per message
    assert "database or disk is full" in full.getMessage()
    assert not (small_disk / "outbox.sqlite.ballast").exists()  # spent on the emergency

    # The other writer is done: the outbox stores again, and the numbers it had to skip
    # are on disk as dropped, for the restarted agent and for the collector's gaps.
    hog.leave()
    assert outbox.append(Channel.TELEMETRY, SMALL) == 251
    [room] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "room again" in room.getMessage()
    assert (small_disk / "outbox.sqlite.ballast").exists()
    outbox.close()
    reopened = Outbox(path)
    assert (reopened.last_seq(), reopened.dropped()) == (251, lost)
    queued = assert_accounted(reopened)
    reopened.sent(reopened.peek(100_000))
    assert reopened.confirm(reopened.epoch, [(1, 251)]) == len(queued)
    assert reopened.depth() == 0
    reopened.close()


def test_a_full_disk_at_start_up_still_opens_the_outbox(small_disk):
    path = small_disk / "outbox.sqlite"
    outbox = Outbox(path)
    for _ in range(20):
        outbox.append(Channel.TELEMETRY, SMALL)
    outbox.close()
    hog = Hog(small_disk / "update.part")
    hog.take_all()
    with contextlib.closing(Outbox(path)) as restarted:
        assert restarted.append(Channel.TELEMETRY, SMALL) == 21
        assert restarted.last_seq() == restarted.depth() + restarted.dropped()
    hog.leave()
