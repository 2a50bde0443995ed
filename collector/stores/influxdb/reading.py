"""Answers in InfluxQL: the same rows, in the same order, as the SQLite store's.

Readings are read from the raw policy, or for windows of whole hours from the hourly
rollup. A device's row is gathered from the accounting measurements in the long-kept
policy: its counts come from the hourly ledger rollup up to the rollup's horizon and from
the raw ledger after it, so the cost follows the devices and the hours, not every message
ever received. Both are counted per epoch, whose gaps count from 1 each; points without
the epoch tag (older agents, or written before epochs) are the empty epoch. Rolling up
reads too: the hours' aggregates of readings and ledger come back as `reading_hourly` and
`delivery_hourly` lines, for the writer to store.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.config import InfluxStoreSettings
from collector.i18n import services
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
from collector.stores.influxdb import influxql as ql
from collector.stores.influxdb import line_protocol as lp
from collector.stores.influxdb.http import Exchange, InfluxHttp
from collector.stores.influxdb.retrying import Retrier

_ = services.gettext

log = logging.getLogger(__name__)

_ROLLUP_FIELDS = ("mean", "min", "max", "last", "count", "sum")


@dataclass
class _DeviceFacts:
    """What the accounting queries say about one device, gathered into its row."""

    site: str
    state: str = "unknown"
    version: str = ""
    duplicates: int = 0
    last_seen: datetime | None = field(default=None)
    # Per epoch: messages and the highest sequence number.
    epochs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def saw(self, when: datetime) -> None:
        self.last_seen = when if self.last_seen is None else max(self.last_seen, when)

    def counted(self, epoch: str, messages: int, top_seq: int, received: datetime) -> None:
        """Add one part of an epoch's ledger: the rolled-up hours or the raw tail."""
        before, top = self.epochs.get(epoch, (0, 0))
        self.epochs[epoch] = (before + messages, max(top, top_seq))
        self.saw(received)

    def row(self, device: str) -> DeviceRow:
        """The empty epoch is agents older than epochs: going from it to the first one is
        an upgrade, not a reset."""
        return DeviceRow(
            device=device,
            site=self.site,
            state=self.state,
            version=self.version,
            last_seen=self.last_seen,
            messages=sum(messages for messages, _ in self.epochs.values()),
            duplicates=self.duplicates,
            gaps=sum(top - messages for messages, top in self.epochs.values()),
            state_resets=max(len(self.epochs.keys() - {""}) - 1, 0),
        )


class Reader:
    def __init__(self, settings: InfluxStoreSettings, http: InfluxHttp, retrier: Retrier) -> None:
        self._http = http
        self._retrier = retrier
        self._raw = ql.policy(settings.database, settings.raw_policy)
        self._long = ql.policy(settings.database, settings.hourly_policy)

    def query(self, query: ReadingQuery) -> list[ReadingRow]:
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
        if rollup and query.window % timedelta(hours=1):
            raise ValueError(
                _("the hourly rollup answers whole hours, not {window}").format(window=query.window)
            )
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
        horizon = self.rollup_horizon()
        ledger_fields = (
            'max("received") AS "received", last("site") AS "site" FROM {source}{where}'
            ' GROUP BY "device", "epoch"'
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
        status, duplicates, *ledgers = self._query(*statements)
        found: dict[str, _DeviceFacts] = {}
        for ledger in ledgers:
            for series in ledger:
                [r] = series.records()
                facts = found.setdefault(series.tags["device"], _DeviceFacts(site=r["site"]))
                facts.counted(
                    series.tags.get("epoch") or "",
                    int(r["messages"]),
                    int(r["top"]),
                    ql.micros_time(r["received"]),
                )
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
        [result] = self._query(f'SELECT last("done") FROM {self._long}."ledger_rollup"')
        return next((ql.micros_time(r["time"]) for s in result for r in s.records()), None)

    def hours(self, start: datetime, end: datetime) -> tuple[list[str], list[str]]:
        """The hourly rollup of [start, end): `reading_hourly` lines of the `ok` readings,
        and `delivery_hourly` lines of the ledger, per device and epoch."""
        select = ", ".join(f'{f}("value") AS {ql.ident(f)}' for f in _ROLLUP_FIELDS)
        conditions = ["\"quality\" = 'ok'", *ql.time_range(start, end)]
        [result] = self._query(
            f'SELECT {select} FROM {self._raw}."reading"{ql.where(conditions)}'
            f" GROUP BY time(1h), {ql.SERIES_KEYS} fill(none)"
        )
        lines = []
        for series in result:
            try:
                lines += [_hourly_line(series.tags, r) for r in series.records()]
            except lp.LineProtocolError as exc:
                # Written before the wire refused such values; its raw data stays.
                log.warning("series %s not rolled up: %s", dict(series.tags), exc)
        [ledger] = self._query(
            'SELECT count("seq") AS "messages", max("seq") AS "top",'
            ' max("received") AS "received", last("site") AS "site"'
            f' FROM {self._long}."delivery"{ql.where(ql.time_range(start, end))}'
            ' GROUP BY time(1h), "device", "epoch" fill(none)'
        )
        accounting = [
            lp.delivery_hourly_line(series.tags["device"], series.tags.get("epoch") or "", r)
            for series in ledger
            for r in series.records()
        ]
        return lines, accounting

    def _query(self, *statements: str) -> list[list[ql.Series]]:
        return self._retrier.answered(self._http.start_query(*statements), Exchange.series)


def _series_identity(tags: dict[str, str]) -> dict[str, str]:
    return {t: tags.get(t) or "" for t in ql.SERIES_TAGS}


def _hourly_line(tags: dict[str, str], record: dict[str, Any]) -> str:
    tag_text = ",".join(f"{t}={lp.tag(tags[t])}" for t in sorted(tags) if tags[t])
    fields = ",".join(
        f"count={int(record['count'])}i" if f == "count" else f"{f}={float(record[f])!r}"
        for f in _ROLLUP_FIELDS
    )
    return f"reading_hourly,{tag_text} {fields} {int(record['time']) * 1000}"
