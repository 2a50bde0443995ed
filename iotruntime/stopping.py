"""The one way a long-running loop waits: until its next turn, or at once when told to stop.

Loops end on their `stop` event rather than on being cancelled alone, and the project
bounds a wait with `asyncio.timeout`, never `asyncio.wait_for`: on Python 3.11 (Debian
bookworm, Raspberry Pi OS) `wait_for` swallows a cancellation that arrives in the same
turn of the event loop as the result it waits for, and the cancelled loop then runs on
forever, holding its process past systemd's stop timeout.
"""

import asyncio
import contextlib
from collections.abc import Awaitable


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, ending early when `stop` is set; True when it was."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


async def finished(work: Awaitable[object], timeout_s: float) -> bool:
    """Run `work` for at most `timeout_s`; whether it ended (its errors are raised), or
    was cancelled. The bound is awaited beside the work rather than delivered as one
    cancellation into it, so a cancel a library swallows costs that library's own wait,
    never the stop."""
    doing = asyncio.ensure_future(work)
    try:
        await asyncio.wait({doing}, timeout=timeout_s)
    finally:
        if not doing.done():
            doing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await doing
    if doing.cancelled():
        return False
    doing.result()
    return True
