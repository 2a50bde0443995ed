"""The store's upkeep while the collector runs: hourly rollups and the retention purge.

The rollup is recomputed over the last `late_hours` every run rather than once per hour,
because a backlog replayed after an outage lands in hours that were already rolled up;
recomputing writes the same rows again, so it is safe to repeat.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from collector.config import RetentionSettings
from collector.stores.base import Store, StoreUnavailableError
from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def maintain_once(store: Store, retention: RetentionSettings, now: datetime) -> tuple[int, int]:
    """Roll up the complete hours of the late window, and any hours since the last
    rollup that a stopped collector missed, a day at a time; then purge. Returns the
    rows rolled up and the rows purged."""
    end = hour_floor(now)
    start = end - timedelta(hours=retention.late_hours)
    horizon = store.rollup_horizon()
    if horizon is not None and horizon < start:
        start = max(horizon, end - timedelta(days=retention.raw_days))
    rolled = 0
    while start < end:
        step = min(start + timedelta(days=1), end)
        rolled += store.roll_up(start, step)
        start = step
    return rolled, store.purge(now)


async def maintain(store: Store, retention: RetentionSettings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            rolled, purged = await asyncio.to_thread(
                maintain_once, store, retention, datetime.now(UTC)
            )
            log.info("rollup: %d hourly rows; purge: %d rows past retention", rolled, purged)
        except StoreUnavailableError as exc:
            log.warning("rollup and purge skipped, store unavailable: %s", exc)
        except Exception:  # upkeep must never end the collector; the next run tries again
            log.exception("rollup and purge failed; tried again in %g s", retention.every_s)
        await sleep_unless_stopped(stop, retention.every_s)
