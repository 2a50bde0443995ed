"""Waiting out a server that fails for a while, for every request the store makes.

Failures are sorted where they are read (http.py): 5xx, 429 and network errors are retried
with backoff for `retry_for_s`, the same request sent anew each time; past that the store's
call fails with StoreUnavailableError, and a batch fails as a whole, nothing of it
acknowledged. A write the server refuses for its content is not retried here: sending it
again cannot help, splitting it can (writing.py).
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from collector.config import InfluxStoreSettings
from collector.stores.base import StoreUnavailableError
from collector.stores.influxdb import influxql as ql
from collector.stores.influxdb.http import Exchange, TransientError
from iotruntime.connection import backoff_delay

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class InfluxWriteStats:
    """What the store's requests went through: retries of any request, and the messages
    dropped because the server refused them."""

    retries: int = 0
    rejected_messages: int = 0


class Retrier:
    def __init__(self, settings: InfluxStoreSettings, stats: InfluxWriteStats) -> None:
        self._settings = settings
        self._stats = stats
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    def answered(self, exchange: Exchange, read: Callable[[Exchange], T]) -> T:
        """The answer to a request already sent, the request sent again through
        transient failures for `retry_for_s`."""
        unread = [exchange]  # the first attempt is the request already on its way

        def attempt() -> T:
            return read(unread.pop() if unread else exchange.again())

        return self.retry(attempt)

    def retry(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._settings.retry_for_s
        tries = 0
        while True:
            try:
                return attempt()
            except (TransientError, ql.InfluxQLError) as exc:
                # The statements are the store's own, so a server that refuses one is in
                # a passing state (starting up, a shard moving) as far as it can tell.
                delay = backoff_delay(tries, self._rng)
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailableError(
                        f"InfluxDB at {self._settings.url}: {exc}"
                    ) from None
                if tries == 0:
                    log.warning(
                        "InfluxDB failed (%s); retrying for up to %.0f s",
                        exc,
                        self._settings.retry_for_s,
                    )
                tries += 1
                self._stats.retries += 1
                time.sleep(delay)
