"""What every source offers the poller."""

from typing import Protocol

from iotwire.messages import Reading


class SourceError(Exception):
    """A read that failed: counted, reported in health, and retried at the next tick."""


class Source(Protocol):
    name: str

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        """(parameter, unit) pairs a read yields, for the fault readings of a failed read."""
        ...

    async def read(self) -> tuple[Reading, ...]: ...

    async def close(self) -> None: ...
