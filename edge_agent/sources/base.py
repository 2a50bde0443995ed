"""What every source offers the poller, and what sources share."""

import time
from dataclasses import dataclass
from typing import Protocol

from iotwire.messages import Quality, Reading


class SourceError(Exception):
    """A read that failed: counted, reported in health, and retried at the next tick."""


@dataclass
class SourceStats:
    """What a source did since the agent started, as `edge-agent status` and health show
    it; kept by whoever drives the source (the poller, a camera's watcher)."""

    reads: int = 0
    errors: int = 0
    overruns: int = 0
    last_error: str = ""
    last_value: str = ""  # what it read last, as a technician reads it
    last_value_at: float = 0.0


class Source(Protocol):
    name: str

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        """(parameter, unit) pairs a read yields, for the fault readings of a failed read."""
        ...

    async def read(self) -> tuple[Reading, ...]: ...

    async def close(self) -> None: ...


def checked_reading(
    parameter: str, unit: str, value: float | None, valid: tuple[float, float] | None
) -> Reading:
    """A reading marked out_of_range when the value leaves the instrument's measuring
    range, and a fault when the instrument gave no value."""
    if value is None:
        return Reading(parameter=parameter, value=None, unit=unit, quality=Quality.FAULT)
    in_range = valid is None or valid[0] <= value <= valid[1]
    quality = Quality.OK if in_range else Quality.OUT_OF_RANGE
    return Reading(parameter=parameter, value=value, unit=unit, quality=quality)


class ReopenBackoff:
    """When a lost port or connection may be tried again: soon after the first failure,
    then less and less often, so a pulled adapter costs nothing while it is out."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 30.0) -> None:
        self._first_s = first_s
        self._cap_s = cap_s
        self._failures = 0
        self._next_try = 0.0

    def wait_left(self) -> float:
        return max(0.0, self._next_try - time.monotonic())

    def failed(self) -> None:
        self._next_try = time.monotonic() + min(self._cap_s, self._first_s * 2**self._failures)
        self._failures += 1

    def succeeded(self) -> bool:
        """Reset; True if this ends a run of failures."""
        recovered = self._failures > 0
        self._failures = 0
        return recovered
