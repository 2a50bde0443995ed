"""Reads each source on its own interval, with sample times aligned to that interval.

Aligned ticks (12:00:00, 12:01:00, ...) make readings from different stations comparable
and give the collector one timestamp per interval to deduplicate on. A read that runs past
the next tick skips the missed ticks and counts them as overruns rather than drifting.
"""

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from edge_agent.sources.base import Source, SourceError, SourceStats
from iotruntime.console import number_text
from iotruntime.stopping import sleep_unless_stopped
from iotwire.messages import Quality, Reading, Sample

log = logging.getLogger(__name__)

READ_SHARE = 0.8
"""A read may take this share of the interval, so a hung device never costs the next tick."""


def describe(readings: tuple[Reading, ...]) -> str:
    return ", ".join(
        f"{r.parameter} {number_text(r.value)} {r.unit}".rstrip()
        if r.value is not None
        else f"{r.parameter} {r.quality}"
        for r in readings
    )


def fault_readings(source: Source) -> tuple[Reading, ...]:
    return tuple(
        Reading(parameter=name, value=None, unit=unit, quality=Quality.FAULT)
        for name, unit in source.parameters
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def first_tick(now: float, interval_us: int) -> int:
    """Index of the first tick at or after `now`; tick n is at n * interval since the epoch.

    Ticks are counted, never summed: adding a float interval again and again drifts off
    the grid by microseconds, and a sample time is a series key.
    """
    return math.ceil(round(now * 1_000_000) / interval_us)


async def poll(
    source: Source,
    interval_s: float,
    stats: SourceStats,
    emit: Callable[[Sample], None],
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
) -> None:
    """Until `stop`: read at every tick, emit a sample or count the error, keep the pace."""
    interval_us = max(1, round(interval_s * 1_000_000))
    tick = first_tick(clock(), interval_us)
    while not stop.is_set():
        sampled = _EPOCH + timedelta(microseconds=tick * interval_us)
        if await sleep_unless_stopped(stop, max(0.0, tick * interval_us / 1_000_000 - clock())):
            return
        try:
            async with asyncio.timeout(READ_SHARE * interval_s):
                readings = await source.read()
        except (SourceError, TimeoutError) as exc:
            message = str(exc) or f"no answer within {READ_SHARE * interval_s:g} s"
            if message != stats.last_error:
                log.warning("source %s: %s", source.name, message)
            stats.errors += 1
            stats.last_error = message
            emit(Sample(sensor=source.name, ts=sampled, readings=fault_readings(source)))
        else:
            emit(Sample(sensor=source.name, ts=sampled, readings=readings))
            if stats.last_error:
                log.info("source %s: reading again", source.name)
            stats.reads += 1
            stats.last_error = ""
            stats.last_value, stats.last_value_at = describe(readings), clock()
        due = first_tick(clock(), interval_us)
        if due > tick + 1:
            missed = due - tick - 1
            stats.overruns += missed
            log.warning("source %s: read overran, %d tick(s) skipped", source.name, missed)
        tick = max(tick + 1, due)
