"""The poller keeps an aligned pace, counts errors and overruns, and never stops on them."""

import asyncio
import time
from itertools import pairwise

from edge_agent.poller import first_tick, poll
from edge_agent.sources.base import SourceError, SourceStats
from iotwire.messages import Quality, Reading


class ScriptedSource:
    """A source whose reads follow a script: a value, an error, or a slow read."""

    name = "scripted"
    parameters = (("p", "u"),)

    def __init__(self, script: list[object]) -> None:
        self._script = script

    async def read(self) -> tuple[Reading, ...]:
        step = self._script.pop(0) if self._script else 1.0
        if isinstance(step, Exception):
            raise step
        if isinstance(step, tuple):
            await asyncio.sleep(step[0])
            step = step[1]
        return (Reading(parameter="p", value=float(step), unit="u"),)

    async def close(self) -> None:
        return None


def run_poller(source: ScriptedSource, interval: float, seconds: float) -> tuple[list, SourceStats]:
    samples, stats = [], SourceStats()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poll(source, interval, stats, samples.append, stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task

    asyncio.run(main())
    return samples, stats


def test_first_tick_is_aligned_to_the_interval():
    assert first_tick(1000.2, 500_000) == 2001  # 1000.5 s
    assert first_tick(1020.0, 60_000_000) == 17  # 1020 s exactly
    assert first_tick(1020.000001, 60_000_000) == 18


def test_sample_times_are_the_aligned_ticks():
    samples, stats = run_poller(ScriptedSource([1, 2, 3, 4, 5, 6]), 0.1, 0.65)
    assert 4 <= len(samples) <= 7
    assert all(s.ts.microsecond % 100_000 == 0 for s in samples)
    stamps = [s.ts.timestamp() for s in samples]
    assert all(round((b - a) * 10) == 1 for a, b in pairwise(stamps))
    assert stats.reads == len(samples)
    assert stats.errors == 0


def test_errors_are_counted_yield_fault_readings_and_polling_goes_on():
    source = ScriptedSource([1, SourceError("bus timeout"), SourceError("bus timeout"), 4])
    samples, stats = run_poller(source, 0.1, 0.65)
    assert stats.errors == 2
    assert [(r.value, r.quality) for s in samples[:4] for r in s.readings] == [
        (1.0, Quality.OK),
        (None, Quality.FAULT),
        (None, Quality.FAULT),
        (4.0, Quality.OK),
    ]
    assert stats.last_error == ""


def test_a_hung_read_costs_only_its_own_tick():
    source = ScriptedSource([1, (5.0, 2), 3, 4, 5, 6, 7, 8])
    samples, stats = run_poller(source, 0.2, 1.5)
    assert stats.errors == 1
    assert stats.overruns == 0
    stamps = [s.ts.timestamp() for s in samples]
    assert all(round((b - a) * 5) == 1 for a, b in pairwise(stamps))
    assert [s.readings[0].quality for s in samples].count(Quality.FAULT) == 1


def test_a_stalled_loop_skips_ticks_and_counts_them():
    samples, stats = [], SourceStats()

    def slow_commit(sample) -> None:
        samples.append(sample)
        if len(samples) == 2:
            time.sleep(0.65)  # the outbox commit stalls, as on a worn SD card

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poll(ScriptedSource([]), 0.2, stats, slow_commit, stop))
        await asyncio.sleep(1.8)
        stop.set()
        await task

    asyncio.run(main())
    assert stats.overruns == 3
    stamps = [s.ts.timestamp() for s in samples]
    assert stamps == sorted(set(stamps))
    assert [round((b - a) * 5) for a, b in pairwise(stamps)].count(4) == 1


class GatedSource(ScriptedSource):
    """A read that ends when the test opens its gate."""

    def __init__(self) -> None:
        super().__init__([])
        self.reading = asyncio.Event()
        self.gate: asyncio.Future[None] | None = None

    async def read(self) -> tuple[Reading, ...]:
        self.gate = asyncio.get_running_loop().create_future()
        self.reading.set()
        await self.gate
        return (Reading(parameter="p", value=1.0, unit="u"),)


def test_a_stop_that_lands_as_a_read_completes_ends_the_poll():
    # The agent's stop once hung a box past systemd's wait: its cancel arrived in the same
    # turn of the event loop as a read's answer, and `asyncio.wait_for` on Python 3.11
    # returned the answer and dropped the cancel. The poll now ends on the stop itself.
    async def main() -> bool:
        source, stop = GatedSource(), asyncio.Event()
        task = asyncio.create_task(poll(source, 0.5, SourceStats(), lambda sample: None, stop))
        await source.reading.wait()
        assert source.gate is not None
        source.gate.set_result(None)
        await asyncio.sleep(0)  # the answer is in; the poll has not resumed yet
        stop.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)
        task.cancel()
        return bool(done)

    assert asyncio.run(main())
