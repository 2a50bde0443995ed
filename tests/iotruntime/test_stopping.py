"""Bounded waits that end on time or on a stop, whatever the work does with a cancel."""

import asyncio

import pytest

from iotruntime.stopping import finished, sleep_unless_stopped


class Stubborn:
    """Work that swallows its first cancel, as `asyncio.wait_for` on Python 3.11 can."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.cancels = 0

    async def run(self) -> None:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancels += 1
            await asyncio.sleep(0.05)  # finishes its step anyway, then returns


def test_work_that_ends_in_time_is_finished_and_its_error_raised():
    async def fails() -> None:
        raise ValueError("broken")

    async def main() -> None:
        assert await finished(asyncio.sleep(0.01), timeout_s=1)
        with pytest.raises(ValueError, match="broken"):
            await finished(fails(), timeout_s=1)

    asyncio.run(main())


def test_a_timeout_or_a_stop_ends_the_wait_even_when_the_work_swallows_its_cancel():
    async def main() -> tuple[bool, bool, float]:
        loop = asyncio.get_running_loop()
        slow = Stubborn(30)
        began = loop.time()
        timed_out = await finished(slow.run(), timeout_s=0.2)
        stop = asyncio.Event()
        loop.call_later(0.2, stop.set)
        stopped = await finished(Stubborn(30).run(), stop)
        return timed_out, stopped, loop.time() - began

    timed_out, stopped, took = asyncio.run(main())
    # The swallowed cancel let the work return normally: it is reported as finished, and
    # the wait still ended within its bounds.
    assert (timed_out, stopped) == (True, True)
    assert took < 1.0


def test_sleep_unless_stopped_says_whether_it_was_stopped():
    async def main() -> tuple[bool, bool]:
        stop = asyncio.Event()
        slept = await sleep_unless_stopped(stop, 0.01)
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return slept, await sleep_unless_stopped(stop, 30)

    assert asyncio.run(main()) == (False, True)
