"""Whether the box's clock is synchronised, as the kernel sees it.

Sample times come from the device, so the collector must know whether to trust them. The
kernel's adjtimex() answers for any time daemon (chrony, systemd-timesyncd, ntpd) without
asking which one runs; a Pi without an RTC boots unsynchronised until one of them succeeds.
"""

import ctypes
import ctypes.util
import functools

from iotwire.messages import ClockSync

_TIME_ERROR = 5  # adjtimex() result: the clock is not synchronised
_TIMEX_SIZE = 512  # larger than struct timex on every Linux ABI; zeroed means "read only"


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """Looked up once: find_library runs ldconfig, far too slow for every sample."""
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


def _adjtimex() -> int | None:
    libc = _libc()
    if libc is None:
        return None
    buffer = ctypes.create_string_buffer(_TIMEX_SIZE)
    result = libc.adjtimex(buffer)
    return None if result < 0 else int(result)


def clock_sync() -> ClockSync:
    state = _adjtimex()
    return ClockSync.SYNCED if state is not None and state != _TIME_ERROR else ClockSync.UNSYNCED
