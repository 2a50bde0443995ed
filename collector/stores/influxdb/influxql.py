"""InfluxQL text for the shared query model, and its answers read back into rows.

InfluxQL over `/query` is the one query language InfluxDB 1.x, 2.x (through DBRP mappings)
and 3.x all answer. Every name and value that reaches a statement goes through `ident` or
`literal`, so a device id can never change what a statement means.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.query import Aggregate, AggregateQuery, from_micros, to_micros

SERIES_TAGS = ("site", "device", "sensor", "parameter", "unit")

# From the hourly rollup, each aggregate of a longer window is exact: the mean is the sum
# of sums over the sum of counts, never a mean of means.
_RAW_FUNCTION = {
    Aggregate.MEAN: 'mean("value")',
    Aggregate.MIN: 'min("value")',
    Aggregate.MAX: 'max("value")',
    Aggregate.LAST: 'last("value")',
    Aggregate.COUNT: 'count("value")',
}
_ROLLUP_FUNCTION = {
    Aggregate.MEAN: 'sum("sum") / sum("count")',
    Aggregate.MIN: 'min("min")',
    Aggregate.MAX: 'max("max")',
    Aggregate.LAST: 'last("last")',
    Aggregate.COUNT: 'sum("count")',
}


class InfluxQLError(Exception):
    """The server refused or failed a statement; the message is the server's."""


def ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The series' tag keys, as GROUP BY names them to return one series per sensor reading.
SERIES_KEYS = ", ".join(ident(t) for t in SERIES_TAGS)


def policy(database: str, name: str) -> str:
    """A retention policy with its database, as a FROM clause names it before a measurement."""
    return f"{ident(database)}.{ident(name)}"


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(ts: datetime) -> str:
    return f"{to_micros(ts)}u"


def any_of(tag_key: str, values: Iterable[str]) -> str | None:
    terms = [f"{ident(tag_key)} = {literal(v)}" for v in values]
    return f"({' OR '.join(terms)})" if terms else None


def time_range(start: datetime | None, end: datetime | None) -> list[str]:
    clauses = []
    if start is not None:
        clauses.append(f"time >= {time_literal(start)}")
    if end is not None:
        clauses.append(f"time < {time_literal(end)}")
    return clauses


def where(clauses: Iterable[str | None]) -> str:
    kept = [c for c in clauses if c]
    return f" WHERE {' AND '.join(kept)}" if kept else ""


def aggregate_statement(source: str, query: AggregateQuery, rollup: bool) -> str:
    functions = _ROLLUP_FUNCTION if rollup else _RAW_FUNCTION
    select = ", ".join(f"{functions[f]} AS {ident(f.value)}" for f in query.functions)
    conditions = [
        None if rollup else "\"quality\" = 'ok'",
        *time_range(query.start, query.end),
        any_of("device", query.devices),
        any_of("parameter", query.parameters),
    ]
    window = int(query.window.total_seconds())
    return (
        f"SELECT {select} FROM {source}{where(conditions)}"
        f" GROUP BY time({window}s), {SERIES_KEYS} fill(none)"
    )


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def records(self) -> Iterator[dict[str, Any]]:
        for row in self.values:
            yield dict(zip(self.columns, row, strict=True))


def series_of(answer: dict[str, Any]) -> list[list[Series]]:
    """One list of series per statement; a statement's error becomes InfluxQLError."""
    results = []
    for result in answer.get("results", []):
        if "error" in result:
            raise InfluxQLError(result["error"])
        results.append(
            [
                Series(s.get("name", ""), s.get("tags") or {}, s["columns"], s["values"])
                for s in result.get("series", [])
            ]
        )
    if "error" in answer:
        raise InfluxQLError(answer["error"])
    return results


def micros_time(value: int) -> datetime:
    """Answers are asked for with epoch=u, so times come back as integer microseconds."""
    return from_micros(int(value))
