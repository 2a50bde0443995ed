"""What every `collector` command shares: loading the config, printing errors as one
line, tables or CSV, and reading times the way operators type them."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from collector.config import CollectorConfig, load_collector
from collector.i18n import _
from collector.query import QueryError, is_duration, parse_duration
from collector.stores import Store, StoreUnavailableError, open_store
from iotruntime.configfile import ConfigError
from iotruntime.console import fail, number_text
from iotruntime.i18n import ENGLISH, N_, VIETNAMESE, process_language

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help=_("collector config (YAML)"))]
T = TypeVar("T")


def settings_of(config: Path) -> CollectorConfig:
    try:
        return load_collector(config)
    except ConfigError as exc:
        raise fail(exc) from None


def store_of(config: Path) -> Store:
    return open_store(settings_of(config))


def asked(make: Callable[[], T]) -> T:
    """A question for the store, made before the store is opened: one the query model
    refuses (collector/query.py) is the one-line error, and no store is asked it."""
    try:
        return make()
    except QueryError as exc:
        raise fail(exc) from None


def ask(store: Store, question: Callable[[Store], T]) -> T:
    """Run one question against the store, closing it after; an unreachable store, or a
    question the query model refuses, is an error message, not a traceback."""
    try:
        return question(store)
    except (StoreUnavailableError, QueryError) as exc:
        raise fail(exc) from None
    finally:
        store.close()


def parse_window(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_when(text: str, now: datetime) -> datetime:
    """`90s`, `15m`, `2h`, `7d` ago, or an ISO 8601 time (UTC when it names no zone)."""
    if is_duration(text):
        return now - parse_window(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            _("{text} is neither a duration like 15m, 2h, 7d nor an ISO 8601 time").format(
                text=repr(text)
            )
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def number(value: float | None, csv_out: bool) -> str:
    if value is None:
        return ""
    return repr(value) if csv_out else number_text(value)


# A time in a table, as its reader writes one; programs get ISO 8601.
_TABLE_TIMES = {ENGLISH: "%Y-%m-%d %H:%M:%S", VIETNAMESE: "%H:%M:%S %d/%m/%Y"}


def when_text(ts: datetime, csv_out: bool) -> str:
    return ts.isoformat() if csv_out else ts.strftime(_TABLE_TIMES[process_language()])


DeviceOption = Annotated[list[str] | None, typer.Option(help=_("device id (repeatable)"))]
ParameterOption = Annotated[list[str] | None, typer.Option(help=_("parameter (repeatable)"))]

# The columns of the rows the API and CSV share (collector/rows.py), titled for people in
# a table; their names stay the keys of CSV and JSON.
_COLUMN_LABELS = {
    "ts": N_("ts"),
    "window_start": N_("window_start"),
    "site": N_("site"),
    "device": N_("device"),
    "name": N_("name"),
    "sensor": N_("sensor"),
    "parameter": N_("parameter"),
    "value": N_("value"),
    "unit": N_("unit"),
    "quality": N_("quality"),
    "state": N_("state"),
    "version": N_("version"),
    "last_seen": N_("last_seen"),
    "messages": N_("messages"),
    "duplicates": N_("duplicates"),
    "gaps": N_("gaps"),
    "resets": N_("resets"),
    "mean": N_("mean"),
    "min": N_("min"),
    "max": N_("max"),
    "last": N_("last"),
    "count": N_("count"),
}


def labels_of(header: Sequence[str]) -> list[str]:
    """The titles people read over the columns `header` names for programs."""
    return [_(_COLUMN_LABELS[name]) if name in _COLUMN_LABELS else name for name in header]
