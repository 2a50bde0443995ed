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
        assert await finished(asyncio.sleep(0.01), 1)
        with pytest.raises(ValueError, match="broken"):
            await finished(fails(), 1)

    asyncio.run(main())


def test_the_timeout_ends_the_wait_even_when_the_work_swallows_its_cancel():
    async def main() -> tuple[bool, int, float]:
        loop = asyncio.get_running_loop()
        slow = Stubborn(30)
        began = loop.time()
        ended = await finished(slow.run(), 0.2)
        return ended, slow.cancels, loop.time() - began

    ended, cancels, took = asyncio.run(main())
    # The swallowed cancel let the work return normally: it is reported as finished, and
    # the wait still ended within its bound.
    assert (ended, cancels) == (True, 1)
    assert took < 1.0


def test_work_that_takes_its_cancel_is_reported_cancelled():
    async def main() -> bool:
        return await finished(asyncio.sleep(30), 0.05)

    assert asyncio.run(main()) is False


def test_sleep_unless_stopped_says_whether_it_was_stopped():
    async def main() -> tuple[bool, bool]:
        stop = asyncio.Event()
        slept = await sleep_unless_stopped(stop, 0.01)
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return slept, await sleep_unless_stopped(stop, 30)

    assert asyncio.run(main()) == (False, True)
