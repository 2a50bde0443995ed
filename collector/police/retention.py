"""Plate reads are personal data: kept `reads_days`, unless an alert holds them, and
alerts (with their reads and crops) `alerts_days`.

The purge deletes in small transactions, so ingest, which writes to the same database,
never waits long behind it, and each run that removed anything leaves a record in the
audit log with the counts: the trail shows that retention is enforced, not only that it
is configured.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.police import audit
from collector.police.database import PoliceDb, utc_text
from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)
CHUNK = 2000


@dataclass(frozen=True)
class Purged:
    reads: int
    alerts: int
    photos: int = 0


_ALERTS = "SELECT id FROM alerts WHERE ts < ? LIMIT ?"
_READS = (
    "SELECT rowid FROM plate_reads r WHERE ts < ? AND NOT EXISTS"
    " (SELECT 1 FROM alerts a WHERE a.device = r.device AND a.read_seq = r.seq) LIMIT ?"
)

# A plate search finds plates through their distinct texts: one no read holds any more
# is gone with its reads.
_PLATE_TEXTS = (
    "DELETE FROM plate_texts WHERE last_seen < ? AND NOT EXISTS"
    " (SELECT 1 FROM plate_reads r WHERE r.plate = plate_texts.plate)"
)


def purge(db: PoliceDb, reads_days: int, alerts_days: int, now: datetime | None = None) -> Purged:
    """Delete what is past its retention; what was removed."""
    now = now or datetime.now(UTC)
    alerts_before = utc_text(now - timedelta(days=alerts_days))
    reads_before = utc_text(now - timedelta(days=reads_days))
    alerts = reads = 0
    while True:
        with db.transaction() as tx:
            ids = [(i,) for (i,) in tx.execute(_ALERTS, (alerts_before, CHUNK))]
            tx.executemany("DELETE FROM alert_deliveries WHERE alert = ?", ids)
            tx.executemany("DELETE FROM dispatches WHERE alert = ?", ids)
            tx.executemany("DELETE FROM escalations WHERE alert = ?", ids)
            tx.executemany("DELETE FROM alerts WHERE id = ?", ids)
        alerts += len(ids)
        if len(ids) < CHUNK:
            break
    while True:
        with db.transaction() as tx:
            rowids = [(r,) for (r,) in tx.execute(_READS, (reads_before, CHUNK))]
            tx.executemany("DELETE FROM plate_reads WHERE rowid = ?", rowids)
        reads += len(rowids)
        if len(rowids) < CHUNK:
            break
    with db.transaction() as tx:
        tx.execute(_PLATE_TEXTS, (reads_before,))
        # Citizens' photos are kept as long as the crops of the reads they match.
        photos = tx.execute(
            "DELETE FROM photos WHERE uploaded < ?",
            ((now - timedelta(days=reads_days)).isoformat(),),
        ).rowcount
    purged = Purged(reads, alerts, photos)
    if reads or alerts or photos:
        with db.transaction() as tx:
            audit.record(
                tx,
                "collector",
                "retention.purge",
                "plate_reads",
                {
                    "reads": reads,
                    "alerts": alerts,
                    "photos": photos,
                    "reads_before": reads_before,
                    "alerts_before": alerts_before,
                },
                now,
            )
        log.info(
            "retention purge: %d plate read(s), %d alert(s), %d photo(s) removed",
            reads,
            alerts,
            photos,
        )
    return purged


async def purge_periodically(
    db: PoliceDb, reads_days: int, alerts_days: int, every_s: float, stop: asyncio.Event
) -> None:
    """Purge now and every `every_s` until `stop`; a failed run is logged and retried at
    the next one."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(purge, db, reads_days, alerts_days)
        except Exception:  # a purge that fails must not stop the collector
            log.exception("retention purge failed; retrying in %.0f s", every_s)
        await sleep_unless_stopped(stop, every_s)
