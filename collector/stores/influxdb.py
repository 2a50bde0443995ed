"""The InfluxDB store: line protocol in, InfluxQL out, the same answers as the SQLite store.

Raw data (readings, health) goes to the raw retention policy (v1) or bucket (v2); the
hourly rollup and the delivery accounting (ledger, duplicates, device status) go to the
long-kept one, so gap counts outlive the raw data they describe.

A batch's data is written whole, duplicates included: their points already exist and
are written over with the same values, which is cheaper than waiting to leave them out.
`begin_batch` sends the data and asks the ledger which of the batch's messages it holds,
and returns; the commit process then begins the next batch, whose formatting overlaps the
server's work on this one. `outcomes()` reads the ledger's answer, sends the ledger points
of the new messages, one `duplicate` point per repeat, and waits for both writes. The
ledger cannot yet hold the messages of a batch begun earlier and not finished, so those
count as delivered; should that earlier batch fail, every batch begun after it fails too.

A batch counts as committed only when its writes succeeded. If one fails, nothing is
acknowledged and the broker delivers the batch again: its data is rewritten onto the same
points, so every sample is stored once, and each message is in the ledger once. The only
trace of the failure is that a message whose ledger point had gone in is counted as a
duplicate when it comes again, which it is.

Failures are sorted: 5xx, 429 and network errors are retried with backoff for
`retry_for_s`, then the batch fails as a whole (StoreUnavailableError) and nothing of it
is acknowledged. A batch the server refuses for its content (400, 413, 422) is split in
halves until the refused messages stand alone; those are counted as rejected, the rest is
written.
"""

import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import urllib3
from influxdb_client.domain.dbrp_create import DBRPCreate
from influxdb_client.rest import ApiException
from influxdb_client.service.dbr_ps_service import DBRPsService

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.query import (
    AggregateQuery,
    AggregateRow,
    DeviceRow,
    LatestQuery,
    ReadingQuery,
    ReadingRow,
    aggregate_order,
    latest_order,
    reading_order,
)
from collector.stores import influxql as ql
from collector.stores import line_protocol as lp
from collector.stores.base import Delivery, PendingBatch, StoreUnavailableError, WriteOutcome
from collector.stores.influx_http import (
    Exchange,
    InfluxHttp,
    RejectedError,
    Target,
    TransientError,
)
from iotwire.connection import backoff_delay
from iotwire.messages import Health, PlateRead, Status

log = logging.getLogger(__name__)

_ROLLUP_FIELDS = ("mean", "min", "max", "last", "count", "sum")
LOOKUP_SPAN_NS = 600 * 1_000_000_000
T = TypeVar("T")


@dataclass
class InfluxWriteStats:
    retries: int = 0
    rejected_messages: int = 0


@dataclass
class _DeviceFacts:
    """What the accounting queries say about one device, gathered into its row."""

    site: str
    state: str = "unknown"
    version: str = ""
    messages: int = 0
    top_seq: int = 0
    duplicates: int = 0
    last_seen: datetime | None = field(default=None)

    def saw(self, when: datetime) -> None:
        self.last_seen = when if self.last_seen is None else max(self.last_seen, when)

    def counted(self, messages: int, top_seq: int, received: datetime) -> None:
        """Add one part of the ledger: the rolled-up hours or the raw tail."""
        self.messages += messages
        self.top_seq = max(self.top_seq, top_seq)
        self.saw(received)

    def row(self, device: str) -> DeviceRow:
        return DeviceRow(
            device=device,
            site=self.site,
            state=self.state,
            version=self.version,
            last_seen=self.last_seen,
            messages=self.messages,
            duplicates=self.duplicates,
            gaps=self.top_seq - self.messages,
        )


@dataclass
class _Begun:
    """A batch between `begin_batch` and its outcomes: its data on the way, its ledger
    lookup asked. `earlier` holds the messages of the batches begun before it and not yet
    finished, which its lookup cannot see yet and which count as delivered."""

    batch: Sequence[Delivery]
    data: dict[int, list[str]]
    data_writes: list[tuple[list[int], Exchange]]
    lookup: Exchange
    earlier: set[tuple[str, int]]
    ledger_writes: list[Exchange] = field(default_factory=list)
    failure: str | None = None

    @property
    def keys(self) -> Iterator[tuple[str, int]]:
        return ((d.message.device, d.message.seq) for d in self.batch)

    def exchanges(self) -> Iterator[Exchange]:
        yield self.lookup
        yield from (exchange for _, exchange in self.data_writes)
        yield from self.ledger_writes


class InfluxStore:
    def __init__(self, settings: InfluxStoreSettings, retention: RetentionSettings) -> None:
        self._settings = settings
        self._retention = retention
        self._http = InfluxHttp(settings)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._prepared = threading.Lock()
        self._is_prepared = False
        self._open: deque[_Begun] = deque()
        db = ql.ident(settings.database)
        raw, hourly = ql.ident(settings.raw_policy), ql.ident(settings.hourly_policy)
        self._raw = f"{db}.{raw}"
        self._long = f"{db}.{hourly}"
        self.stats = InfluxWriteStats()

    # -- writing ---------------------------------------------------------------------

    def write_batch(self, batch: Sequence[Delivery]) -> list[WriteOutcome]:
        return self.begin_batch(batch).outcomes()

    def begin_batch(self, batch: Sequence[Delivery]) -> PendingBatch:
        """Send the batch's data and its ledger lookup, and return while the server
        works on them."""
        self._prepare()
        earlier = {key for begun in self._open for key in begun.keys}
        data, data_writes = self._start_data(batch)
        lookup = self._http.start_query(self._lookup_statement(batch))
        begun = _Begun(batch, data, data_writes, lookup, earlier)
        self._open.append(begun)
        return PendingBatch(functools.partial(self._finish, begun))

    def _finish(self, begun: _Begun) -> list[WriteOutcome]:
        if not self._open or self._open[0] is not begun:
            raise RuntimeError("a store's batches are finished in the order they began")
        self._open.popleft()
        try:
            if begun.failure is not None:
                raise StoreUnavailableError(begun.failure)
            return self._settle(begun)
        except Exception as exc:
            for later in self._open:
                later.failure = f"a batch begun before it failed: {exc}"
            raise
        finally:
            for exchange in begun.exchanges():  # left unread only when the batch failed
                exchange.abandon()

    def _settle(self, begun: _Begun) -> list[WriteOutcome]:
        """The ledger lookup's answer decides which messages are new; their ledger
        points go in while the data writes finish."""
        seen = self._delivered(begun.lookup) | begun.earlier
        fresh: list[int] = []
        accounting: list[str] = []
        for i, d in enumerate(begun.batch):
            key = (d.message.device, d.message.seq)
            if key in seen:
                accounting.append(lp.duplicate_line(d.message, d.received, i))
            else:
                seen.add(key)
                fresh.append(i)
                accounting.append(lp.delivery_line(d.site, d.message, d.received))
        begun.ledger_writes = self._start_all(accounting, Target.HOURLY)
        rejected: dict[int, str] = {}
        for chunk, exchange in begun.data_writes:
            self._write_or_split(chunk, begun.data, rejected, exchange)
        for exchange in begun.ledger_writes:
            self._answered(exchange, Exchange.written)
        outcomes = [WriteOutcome(rows=0, duplicate=True)] * len(begun.batch)
        for i in fresh:
            reason = rejected.get(i)
            outcomes[i] = WriteOutcome(0 if reason else len(begun.data[i]), False, reason)
        return outcomes

    def record_status(self, site: str, status: Status, received: datetime) -> None:
        self._prepare()
        self._send([lp.status_line(site, status, received)], Target.HOURLY)

    @staticmethod
    def _data_lines(delivery: Delivery) -> list[str]:
        message = delivery.message
        if isinstance(message, PlateRead):
            return []
        if isinstance(message, Health):
            return [lp.health_line(delivery.site, message)]
        return list(lp.reading_lines(delivery.site, message))

    def _lookup_statement(self, batch: Sequence[Delivery]) -> str:
        """Asks for the (device, seq) pairs of this batch that the ledger already holds.

        One statement per group of devices whose messages fall within `LOOKUP_SPAN` of
        each other: a live batch from a hundred devices is one small query, while a
        replayed backlog gets a statement of its own instead of dragging every other
        device's ledger for hours into the answer."""
        spans: dict[str, tuple[int, int]] = {}
        for d in batch:
            key = lp.delivery_key(d.message)
            lo, hi = spans.get(d.message.device, (key, key))
            spans[d.message.device] = (min(lo, key), max(hi, key))
        groups: list[tuple[list[str], int, int]] = []
        for device, (lo, hi) in sorted(spans.items(), key=lambda item: item[1]):
            if groups and max(groups[-1][2], hi) - groups[-1][1] <= LOOKUP_SPAN_NS:
                devices, start, end = groups[-1]
                groups[-1] = ([*devices, device], start, max(end, hi))
            else:
                groups.append(([device], lo, hi))
        return ";".join(
            f'SELECT "seq" FROM {self._long}."delivery"'
            f"{ql.where([ql.any_of('device', devices), f'time >= {lo}', f'time <= {hi}'])}"
            ' GROUP BY "device"'
            for devices, lo, hi in groups
        )

    def _delivered(self, lookup: Exchange) -> set[tuple[str, int]]:
        return {
            (series.tags["device"], int(r["seq"]))
            for result in self._answered(lookup, Exchange.series)
            for series in result
            for r in series.records()
        }

    def _start_data(
        self, batch: Sequence[Delivery]
    ) -> tuple[dict[int, list[str]], list[tuple[list[int], Exchange]]]:
        """Format in chunks of about `batch_points`, each chunk sent before the next is
        formatted. Returns the lines per message and each chunk's messages with its write."""
        data: dict[int, list[str]] = {}
        writes: list[tuple[list[int], Exchange]] = []
        chunk: list[int] = []
        points = 0
        for i, delivery in enumerate(batch):
            data[i] = self._data_lines(delivery)
            chunk.append(i)
            points += len(data[i])
            if points >= self._settings.batch_points or i == len(batch) - 1:
                writes.append((chunk, self._start_chunk(chunk, data)))
                chunk, points = [], 0
        return data, writes

    def _start_chunk(self, chunk: list[int], data: dict[int, list[str]]) -> Exchange:
        return self._http.start_write([line for i in chunk for line in data[i]], Target.RAW)

    def _write_or_split(
        self,
        chunk: list[int],
        data: dict[int, list[str]],
        rejected: dict[int, str],
        exchange: Exchange | None = None,
    ) -> None:
        """Settle one chunk's write, `exchange` if it is already sent; a refused chunk
        is written again in halves until the refused messages stand alone."""
        if exchange is None:
            exchange = self._start_chunk(chunk, data)
        try:
            self._answered(exchange, Exchange.written)
        except RejectedError as exc:
            if len(chunk) == 1:
                rejected[chunk[0]] = str(exc)
                self.stats.rejected_messages += 1
                log.warning("InfluxDB refused a message, dropped: %s", exc)
                return
            half = len(chunk) // 2
            self._write_or_split(chunk[:half], data, rejected)
            self._write_or_split(chunk[half:], data, rejected)

    def _start_all(self, lines: list[str], target: Target) -> list[Exchange]:
        size = self._settings.batch_points
        return [
            self._http.start_write(lines[start : start + size], target)
            for start in range(0, len(lines), size)
        ]

    def _send_all(self, lines: list[str], target: Target) -> None:
        for exchange in self._start_all(lines, target):
            self._answered(exchange, Exchange.written)

    def _send(self, lines: list[str], target: Target) -> None:
        self._answered(self._http.start_write(lines, target), Exchange.written)

    def _query(self, statement: str, *, write: bool = False) -> list[list[ql.Series]]:
        return self._answered(self._http.start_query(statement, write=write), Exchange.series)

    def _answered(self, exchange: Exchange, read: Callable[[Exchange], T]) -> T:
        """The answer to a request already sent, the request sent again through
        transient failures for `retry_for_s`."""
        unread = [exchange]  # the first attempt is the request already on its way

        def attempt() -> T:
            return read(unread.pop() if unread else exchange.again())

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], T]) -> T:
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
                self.stats.retries += 1
                time.sleep(delay)

    # -- start-up --------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create what the store needs on the server, once, at first use: a server that is
        down when the collector starts is waited for like any other outage."""
        with self._prepared:
            if self._is_prepared:
                return
            if self._settings.api == "v1" and self._settings.manage_policies:
                self._retrying(self._create_policies)
            elif self._settings.api == "v2" and self._settings.create_dbrp:
                self._retrying(self._map_buckets)
            self._is_prepared = True

    def _create_policies(self) -> None:
        s, r = self._settings, self._retention
        db = ql.ident(s.database)
        self._http.query(f"CREATE DATABASE {db}", write=True)
        [existing] = self._http.query(f"SHOW RETENTION POLICIES ON {db}", write=True)
        names = {rec["name"] for series in existing for rec in series.records()}
        for policy, days, default in (
            (s.raw_policy, r.raw_days, True),
            (s.hourly_policy, r.hourly_days, False),
        ):
            verb = "ALTER" if policy in names else "CREATE"
            self._http.query(
                f"{verb} RETENTION POLICY {ql.ident(policy)} ON {db} DURATION {days}d"
                f" REPLICATION 1{' DEFAULT' if default else ''}",
                write=True,
            )

    def _map_buckets(self) -> None:
        s, client = self._settings, self._http.client
        # api v2, whose settings require org
        assert client is not None
        assert s.org is not None
        service = DBRPsService(client.api_client)
        try:
            for bucket_name, policy in (
                (s.bucket, s.raw_policy),
                (s.hourly_bucket, s.hourly_policy),
            ):
                if service.get_dbr_ps(org=s.org, db=s.database, rp=policy).content:
                    continue
                found = client.buckets_api().find_buckets(name=bucket_name, org=s.org).buckets
                if not found:
                    raise StoreUnavailableError(
                        f"bucket {bucket_name!r} does not exist in org {s.org!r}; create it"
                        f" with its retention, e.g. `influx bucket create -n {bucket_name}"
                        f" -o {s.org} -r 90d`"
                    )
                service.post_dbrp(
                    DBRPCreate(
                        org=s.org,
                        bucket_id=found[0].id,
                        database=s.database,
                        retention_policy=policy,
                        default=policy == s.raw_policy,
                    )
                )
                log.info("mapped InfluxQL %s/%s to bucket %s", s.database, policy, bucket_name)
        except ApiException as exc:
            raise TransientError(f"HTTP {exc.status}: {exc.body or exc.reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None

    # -- reading ---------------------------------------------------------------------

    def query(self, query: ReadingQuery) -> list[ReadingRow]:
        self._prepare()
        conditions = [
            *ql.time_range(query.start, query.end),
            ql.any_of("device", query.devices),
            ql.any_of("parameter", query.parameters),
        ]
        columns = ", ".join(ql.ident(c) for c in ("value", "quality", *ql.SERIES_TAGS))
        [result] = self._query(
            f'SELECT {columns} FROM {self._raw}."reading"{ql.where(conditions)}'
            f" ORDER BY time ASC LIMIT {int(query.limit)}"
        )
        rows = [
            ReadingRow(
                ts=ql.micros_time(r["time"]),
                site=r["site"],
                device=r["device"],
                sensor=r["sensor"],
                parameter=r["parameter"],
                value=r["value"],
                unit=r["unit"] or "",
                quality=r["quality"],
            )
            for series in result
            for r in series.records()
        ]
        return sorted(rows, key=reading_order)

    def aggregate(self, query: AggregateQuery, *, rollup: bool = False) -> list[AggregateRow]:
        self._prepare()
        if rollup and query.window % timedelta(hours=1):
            raise ValueError(f"the hourly rollup answers whole hours, not {query.window}")
        source = f'{self._long}."reading_hourly"' if rollup else f'{self._raw}."reading"'
        [result] = self._query(ql.aggregate_statement(source, query, rollup))
        rows = [
            AggregateRow(
                window_start=ql.micros_time(r["time"]),
                values=tuple(float(r[f.value]) for f in query.functions),
                **_series_identity(series.tags),
            )
            for series in result
            for r in series.records()
        ]
        return sorted(rows, key=aggregate_order)

    def latest(self, query: LatestQuery) -> list[ReadingRow]:
        self._prepare()
        conditions = [
            "\"quality\" = 'ok'",
            f"time <= {ql.time_literal(query.at)}" if query.at else None,
            ql.any_of("device", query.devices),
            ql.any_of("parameter", query.parameters),
        ]
        [result] = self._query(
            f'SELECT last("value") AS "value" FROM {self._raw}."reading"'
            f"{ql.where(conditions)} GROUP BY {ql.SERIES_KEYS}"
        )
        rows = [
            ReadingRow(
                ts=ql.micros_time(r["time"]),
                value=r["value"],
                quality="ok",
                **_series_identity(series.tags),
            )
            for series in result
            for r in series.records()
        ]
        return sorted(rows, key=latest_order)

    def devices(self) -> list[DeviceRow]:
        """Counts come from the hourly ledger rollup up to its horizon and from the raw
        ledger after it, so the cost follows the devices and the hours, not every message
        ever received."""
        self._prepare()
        horizon = self.rollup_horizon()
        ledger_fields = (
            'max("received") AS "received", last("site") AS "site" FROM {source}{where}'
            ' GROUP BY "device"'
        )
        raw = 'SELECT count("seq") AS "messages", max("seq") AS "top", ' + ledger_fields.format(
            source=f'{self._long}."delivery"',
            where=ql.where(ql.time_range(horizon, None)),
        )
        rolled = 'SELECT sum("messages") AS "messages", max("top") AS "top", ' + (
            ledger_fields.format(
                source=f'{self._long}."delivery_hourly"',
                where=ql.where(ql.time_range(None, horizon)),
            )
        )
        by_device = 'GROUP BY "device"'
        statements = [
            f'SELECT "state", "version", "site" FROM {self._long}."device_status"'
            f" {by_device} ORDER BY time DESC LIMIT 1",
            f'SELECT count("seq") AS "n" FROM {self._long}."duplicate" {by_device}',
            raw,
            *([rolled] if horizon else []),
        ]
        status, duplicates, *ledgers = self._query(";".join(statements))
        found: dict[str, _DeviceFacts] = {}
        for ledger in ledgers:
            for series in ledger:
                [r] = series.records()
                facts = found.setdefault(series.tags["device"], _DeviceFacts(site=r["site"]))
                facts.counted(int(r["messages"]), int(r["top"]), ql.micros_time(r["received"]))
        for series in status:
            [r] = series.records()
            facts = found.setdefault(series.tags["device"], _DeviceFacts(site=r["site"]))
            facts.state, facts.version = r["state"], r["version"]
            facts.saw(ql.micros_time(r["time"]))
        for series in duplicates:
            [r] = series.records()
            found.setdefault(series.tags["device"], _DeviceFacts(site="")).duplicates = r["n"]
        return [f.row(device) for device, f in sorted(found.items())]

    def rollup_horizon(self) -> datetime | None:
        self._prepare()
        [result] = self._query(f'SELECT last("done") FROM {self._long}."ledger_rollup"')
        return next((ql.micros_time(r["time"]) for s in result for r in s.records()), None)

    # -- retention -------------------------------------------------------------------

    def roll_up(self, start: datetime, end: datetime) -> int:
        self._prepare()
        select = ", ".join(f'{f}("value") AS {ql.ident(f)}' for f in _ROLLUP_FIELDS)
        conditions = ["\"quality\" = 'ok'", *ql.time_range(start, end)]
        [result] = self._query(
            f'SELECT {select} FROM {self._raw}."reading"{ql.where(conditions)}'
            f" GROUP BY time(1h), {ql.SERIES_KEYS} fill(none)"
        )
        lines = [_hourly_line(series.tags, r) for series in result for r in series.records()]
        [ledger] = self._query(
            'SELECT count("seq") AS "messages", max("seq") AS "top",'
            ' max("received") AS "received", last("site") AS "site"'
            f' FROM {self._long}."delivery"{ql.where(ql.time_range(start, end))}'
            ' GROUP BY time(1h), "device" fill(none)'
        )
        accounting = [
            lp.delivery_hourly_line(series.tags["device"], r)
            for series in ledger
            for r in series.records()
        ]
        self._send_all(lines + accounting, Target.HOURLY)
        # The horizon moves only once the hours before it are written.
        self._send([f"ledger_rollup done=1i {lp.ns(end)}"], Target.HOURLY)
        return len(lines)

    def purge(self, now: datetime) -> int:
        """The server's retention policies (v1) or bucket retention (v2) delete old data."""
        return 0

    def close(self) -> None:
        self._http.close()


def _series_identity(tags: dict[str, str]) -> dict[str, str]:
    return {t: tags.get(t) or "" for t in ql.SERIES_TAGS}


def _hourly_line(tags: dict[str, str], record: dict[str, Any]) -> str:
    tag_text = ",".join(f"{t}={lp.tag(tags[t])}" for t in sorted(tags) if tags[t])
    fields = ",".join(
        f"count={int(record['count'])}i" if f == "count" else f"{f}={float(record[f])!r}"
        for f in _ROLLUP_FIELDS
    )
    return f"reading_hourly,{tag_text} {fields} {int(record['time']) * 1000}"
