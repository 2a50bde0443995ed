"""The InfluxDB store: line protocol in, InfluxQL out, the same answers as the SQLite store.

Raw data (readings, health) goes to the raw retention policy (v1) or bucket (v2); the
hourly rollup and the delivery accounting (ledger, duplicates, device status) go to the
long-kept one, so gap counts outlive the raw data they describe. The server deletes what is
past its retention, so purging is left to it.

The store's parts share one connection pool and one retry budget: the server is set up by
whichever call comes first (setup.py), batches are committed by the writer (writing.py),
and queries are answered by the reader (reading.py), which also reads the hours to roll
up for the writer to store.
"""

from collections.abc import Sequence
from datetime import datetime

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.query import (
    AggregateQuery,
    AggregateRow,
    DeviceRow,
    LatestQuery,
    ReadingQuery,
    ReadingRow,
)
from collector.stores.base import PendingBatch, ReceivedMessage, WriteOutcome
from collector.stores.influxdb.http import InfluxHttp
from collector.stores.influxdb.reading import Reader
from collector.stores.influxdb.retrying import InfluxWriteStats, Retrier
from collector.stores.influxdb.setup import ServerSetup
from collector.stores.influxdb.writing import Writer
from iotwire.messages import Status


class InfluxStore:
    def __init__(self, settings: InfluxStoreSettings, retention: RetentionSettings) -> None:
        self._http = InfluxHttp(settings)
        self.stats = InfluxWriteStats()
        retrier = Retrier(settings, self.stats)
        self._setup = ServerSetup(settings, retention, self._http, retrier)
        self._writer = Writer(settings, self._http, retrier, self.stats)
        self._reader = Reader(settings, self._http, retrier)

    def write_batch(self, batch: Sequence[ReceivedMessage]) -> list[WriteOutcome]:
        return self.begin_batch(batch).outcomes()

    def begin_batch(self, batch: Sequence[ReceivedMessage]) -> PendingBatch:
        self._setup.prepare()
        return self._writer.begin(batch)

    def record_status(self, site: str, status: Status, received: datetime) -> None:
        self._setup.prepare()
        self._writer.record_status(site, status, received)

    def query(self, query: ReadingQuery) -> list[ReadingRow]:
        self._setup.prepare()
        return self._reader.query(query)

    def aggregate(self, query: AggregateQuery, *, rollup: bool = False) -> list[AggregateRow]:
        self._setup.prepare()
        return self._reader.aggregate(query, rollup=rollup)

    def latest(self, query: LatestQuery) -> list[ReadingRow]:
        self._setup.prepare()
        return self._reader.latest(query)

    def devices(self) -> list[DeviceRow]:
        self._setup.prepare()
        return self._reader.devices()

    def rollup_horizon(self) -> datetime | None:
        self._setup.prepare()
        return self._reader.rollup_horizon()

    def roll_up(self, start: datetime, end: datetime) -> int:
        self._setup.prepare()
        readings, ledger = self._reader.hours(start, end)
        self._writer.write_rollup(readings + ledger, end)
        return len(readings)

    def purge(self, now: datetime) -> int:
        """The server's retention policies (v1) or bucket retention (v2) delete old data."""
        return 0

    def close(self) -> None:
        self._http.close()
