"""InfluxQL text for the shared query model, and its answers read back into rows.

InfluxQL over `/query` is the one query language InfluxDB 1.x, 2.x (through DBRP mappings)
and 3.x all answer. Every name and value that reaches a statement goes through `ident` or
`literal`, so a device id can never change what a statement means.

An answer is checked before it is read: one result per statement, each series with its
columns and rows, and a row or a series' tags asked for a name they lack raise
UnexpectedAnswer, a StoreUnavailableError. A server that is not InfluxDB can sit at the
configured address (VictoriaMetrics answers every `/query` with a list of databases), and
the store must then be unavailable, not fail with a KeyError wherever it reads.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from collector.query import Aggregate, AggregateQuery, from_micros, to_micros
from collector.stores.base import StoreUnavailableError

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


class UnexpectedAnswer(StoreUnavailableError):
    """An answer that is not InfluxQL's answer to the statements sent. Asking again
    would get the same answer, so it is not retried."""


class Fields(dict[str, Any]):
    """A row by column, or a series' tags by key. `get` answers None for a name that is
    absent, as a tag may be; indexing means the name must be there."""

    def __missing__(self, key: str) -> NoReturn:
        raise UnexpectedAnswer(f"the answer has no {key!r} in {dict(self)!r}")


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
    tags: Fields
    columns: list[str]
    values: list[list[Any]]

    def records(self) -> Iterator[Fields]:
        for row in self.values:
            yield Fields(zip(self.columns, row, strict=True))


def series_of(answer: object, statements: int) -> list[list[Series]]:
    """One list of series for each of the `statements` sent; a statement's error becomes
    InfluxQLError, an answer of another shape UnexpectedAnswer."""
    if isinstance(answer, dict) and "error" in answer:
        raise InfluxQLError(answer["error"])
    found = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(found, list) or len(found) != statements:
        raise UnexpectedAnswer(
            f"expected {statements} result(s) to InfluxQL, got {_excerpt(answer)}"
        )
    results = []
    for result in found:
        if isinstance(result, dict) and "error" in result:
            raise InfluxQLError(result["error"])
        series = result.get("series", []) if isinstance(result, dict) else None
        if not isinstance(series, list):
            raise UnexpectedAnswer(f"a result that is no list of series: {_excerpt(result)}")
        results.append([_series(s) for s in series])
    return results


def _series(found: object) -> Series:
    if isinstance(found, dict):
        name, tags = found.get("name", ""), found.get("tags") or {}
        columns, values = found.get("columns"), found.get("values")
        if (
            isinstance(name, str)
            and isinstance(tags, dict)
            and isinstance(columns, list)
            and isinstance(values, list)
            and all(isinstance(row, list) and len(row) == len(columns) for row in values)
        ):
            return Series(name, Fields(tags), columns, values)
    raise UnexpectedAnswer(f"a series without columns and rows to match: {_excerpt(found)}")


def _excerpt(found: object) -> str:
    text = repr(found)
    return text if len(text) <= 200 else f"{text[:200]}..."


def micros_time(value: int) -> datetime:
    """Answers are asked for with epoch=u, so times come back as integer microseconds."""
    return from_micros(int(value))
