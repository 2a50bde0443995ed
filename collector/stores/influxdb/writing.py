"""Committing batches: every message's data, and its delivery in the ledger once.

A batch's data is written whole, duplicates included: their points already exist and
are written over with the same values, which is cheaper than waiting to leave them out.
`begin` sends the data and asks the ledger which of the batch's messages it holds (a
message is its device, epoch and sequence number: a box that lost its state numbers
again from 1 in a new epoch, and those numbers are no repeats), and returns; the commit
process then begins the next batch, whose formatting overlaps the server's work on this
one. The batch's outcomes read the ledger's answer, send the ledger points of the new
messages, one `duplicate` point per repeat, and wait for both writes. The ledger cannot
yet hold the messages of a batch begun earlier and not finished, so those count as
delivered; should that earlier batch fail, every batch begun after it fails too.

A batch counts as committed only when its writes succeeded. If one fails, nothing is
acknowledged and the broker delivers the batch again: its data is rewritten onto the same
points, so every sample is stored once, and each message is in the ledger once. The only
trace of the failure is that a message whose ledger point had gone in is counted as a
duplicate when it comes again, which it is.

A batch the server refuses for its content (400, 413, 422) is split in halves until the
refused messages stand alone; those are counted as rejected, the rest is written. A message
with a value the line protocol cannot carry (line_protocol.py) is rejected the same way
before it is sent. Other failures are retried (retrying.py), and then fail the batch as a
whole.
"""

import functools
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collector.config import InfluxStoreSettings
from collector.stores.base import PendingBatch, ReceivedMessage, StoreUnavailableError, WriteOutcome
from collector.stores.influxdb import influxql as ql
from collector.stores.influxdb import line_protocol as lp
from collector.stores.influxdb.http import Exchange, InfluxHttp, RejectedError, Target
from collector.stores.influxdb.retrying import InfluxWriteStats, Retrier
from iotwire.messages import Health, PlateRead, Status

log = logging.getLogger(__name__)

LOOKUP_SPAN_NS = 600 * 1_000_000_000

# A message in the ledger: device, epoch ("" for agents older than epochs), seq.
_Key = tuple[str, str, int]


def _key(delivery: ReceivedMessage) -> _Key:
    message = delivery.message
    return (message.device, message.epoch or "", message.seq)


@dataclass
class _Begun:
    """A batch between `begin` and its outcomes: its data on the way, its ledger lookup
    asked. `earlier` holds the messages of the batches begun before it and not yet
    finished, which its lookup cannot see yet and which count as delivered."""

    batch: Sequence[ReceivedMessage]
    data: dict[int, list[str]]
    unwritable: dict[int, str]
    data_writes: list[tuple[list[int], Exchange]]
    lookup: Exchange
    earlier: set[_Key]
    ledger_writes: list[Exchange] = field(default_factory=list)
    failure: str | None = None

    @property
    def keys(self) -> Iterator[_Key]:
        return (_key(d) for d in self.batch)

    def exchanges(self) -> Iterator[Exchange]:
        yield self.lookup
        yield from (exchange for _, exchange in self.data_writes)
        yield from self.ledger_writes


class Writer:
    def __init__(
        self,
        settings: InfluxStoreSettings,
        http: InfluxHttp,
        retrier: Retrier,
        stats: InfluxWriteStats,
    ) -> None:
        self._settings = settings
        self._http = http
        self._retrier = retrier
        self._stats = stats
        self._open: deque[_Begun] = deque()
        self._long = ql.policy(settings.database, settings.hourly_policy)

    def begin(self, batch: Sequence[ReceivedMessage]) -> PendingBatch:
        """Send the batch's data and its ledger lookup, and return while the server
        works on them."""
        earlier = {key for begun in self._open for key in begun.keys}
        data, unwritable, data_writes = self._start_data(batch)
        lookup = self._http.start_query(*self._lookup_statements(batch))
        begun = _Begun(batch, data, unwritable, data_writes, lookup, earlier)
        self._open.append(begun)
        return PendingBatch(functools.partial(self._finish, begun))

    def record_status(self, site: str, status: Status, received: datetime) -> None:
        """A status the line protocol cannot carry is left out: it is no part of the
        ledger, and the device's next status replaces it."""
        try:
            line = lp.status_line(site, status, received)
        except lp.LineProtocolError as exc:
            log.warning("status of %s refused: %s", status.device, exc)
            return
        self._send([line], Target.HOURLY)

    def write_rollup(self, lines: list[str], end: datetime) -> None:
        """Store the rolled-up hours before `end`, then move the rollup horizon to `end`."""
        self._send_all(lines, Target.HOURLY)
        # The horizon moves only once the hours before it are written.
        self._send([f"ledger_rollup done=1i {lp.ns(end)}"], Target.HOURLY)

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
            key = _key(d)
            if key in seen:
                accounting.append(lp.duplicate_line(d.message, d.received, i))
            else:
                seen.add(key)
                fresh.append(i)
                accounting.append(lp.delivery_line(d.site, d.message, d.received))
        begun.ledger_writes = self._start_all(accounting, Target.HOURLY)
        rejected = dict(begun.unwritable)
        for chunk, exchange in begun.data_writes:
            self._write_or_split(chunk, begun.data, rejected, exchange)
        for exchange in begun.ledger_writes:
            self._retrier.answered(exchange, Exchange.written)
        outcomes = [WriteOutcome(rows=0, duplicate=True)] * len(begun.batch)
        for i in fresh:
            reason = rejected.get(i)
            outcomes[i] = WriteOutcome(0 if reason else len(begun.data[i]), False, reason)
        return outcomes

    @staticmethod
    def _data_lines(delivery: ReceivedMessage) -> list[str]:
        message = delivery.message
        if isinstance(message, PlateRead):
            return []
        if isinstance(message, Health):
            return [lp.health_line(delivery.site, message)]
        return list(lp.reading_lines(delivery.site, message))

    def _lookup_statements(self, batch: Sequence[ReceivedMessage]) -> list[str]:
        """Asks for the (device, epoch, seq) of this batch that the ledger already holds.

        One statement per group of devices whose messages fall within `LOOKUP_SPAN_NS` of
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
        return [
            f'SELECT "seq" FROM {self._long}."delivery"'
            f"{ql.where([ql.any_of('device', devices), f'time >= {lo}', f'time <= {hi}'])}"
            ' GROUP BY "device", "epoch"'
            for devices, lo, hi in groups
        ]

    def _delivered(self, lookup: Exchange) -> set[_Key]:
        """A series without the epoch tag answers it as "" (or leaves it out)."""
        return {
            (series.tags["device"], series.tags.get("epoch") or "", int(r["seq"]))
            for result in self._retrier.answered(lookup, Exchange.series)
            for series in result
            for r in series.records()
        }

    def _start_data(
        self, batch: Sequence[ReceivedMessage]
    ) -> tuple[dict[int, list[str]], dict[int, str], list[tuple[list[int], Exchange]]]:
        """Format in chunks of about `batch_points`, each chunk sent before the next is
        formatted. Returns the lines per message, why each message that cannot be written
        as lines cannot, and each chunk's messages with its write."""
        data: dict[int, list[str]] = {}
        unwritable: dict[int, str] = {}
        writes: list[tuple[list[int], Exchange]] = []
        chunk: list[int] = []
        points = 0
        for i, delivery in enumerate(batch):
            try:
                data[i] = self._data_lines(delivery)
            except lp.LineProtocolError as exc:
                data[i], unwritable[i] = [], str(exc)
                self._stats.rejected_messages += 1
                message = delivery.message
                log.warning("%s seq %d refused: %s", message.device, message.seq, exc)
            chunk.append(i)
            points += len(data[i])
            if points >= self._settings.batch_points or i == len(batch) - 1:
                writes.append((chunk, self._start_chunk(chunk, data)))
                chunk, points = [], 0
        return data, unwritable, writes

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
            self._retrier.answered(exchange, Exchange.written)
        except RejectedError as exc:
            if len(chunk) == 1:
                rejected[chunk[0]] = str(exc)
                self._stats.rejected_messages += 1
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
            self._retrier.answered(exchange, Exchange.written)

    def _send(self, lines: list[str], target: Target) -> None:
        self._retrier.answered(self._http.start_write(lines, target), Exchange.written)
