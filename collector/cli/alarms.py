"""`collector alarms`: list the alarms, acknowledge one, silence a rule or a box for a
maintenance window. Each command opens the alarm book (`alarms.path`) beside a running
collector, changes one thing, records it in the history and exits."""

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from collector.alarms.book import AlarmBook, UnknownAlarmError
from collector.cli.common import ConfigOption, number, parse_window, settings_of, when_text
from collector.i18n import _
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail

alarms_app = typer.Typer(
    no_args_is_help=True, help=_("Alarms: boxes offline or silent, readings over their limits.")
)
ByOption = Annotated[str, typer.Option("--by", help=_("who makes the change (for the history)"))]


@contextlib.contextmanager
def alarm_book(config: Path) -> Iterator[AlarmBook]:
    settings = settings_of(config)
    if settings.alarms is None:
        problem = _("the config has no alarms section")
        raise fail(ValueError(f"{config}: alarms: {problem}"))
    try:
        book = AlarmBook(settings.alarms.path)
    except (OSError, sqlite3.Error) as exc:
        raise fail(ValueError(f"{config}: alarms.path: {exc}")) from None
    try:
        yield book
    except (UnknownAlarmError, ValueError) as exc:
        raise fail(exc) from None
    finally:
        book.close()


@alarms_app.command(
    "list", help=_("The active alarms (with --all, the resolved ones too), newest first.")
)
def list_alarms(
    config: ConfigOption,
    all_: Annotated[bool, typer.Option("--all", help=_("resolved alarms too"))] = False,
    limit: Annotated[int, typer.Option(min=1, help=_("at most this many, newest first"))] = 200,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    with alarm_book(config) as book:
        found = book.alarms(active_only=not all_, limit=limit)
    header = ("id", "state", "severity", "rule", "device", "raised", "acked by", "message")
    rows = [
        (
            a.id,
            a.state,
            a.severity,
            a.rule,
            a.device,
            when_text(a.raised_at, out.machine),
            a.acked_by or "",
            a.message if a.value is None else f"{a.message} [{number(a.value, out.machine)}]",
        )
        for a in found
    ]
    labels = (
        _("id"),
        _("state"),
        _("severity"),
        _("rule"),
        _("device"),
        _("raised"),
        _("acked by"),
        _("message"),
    )
    emit(_("Alarms"), header, rows, out, labels=labels)


@alarms_app.command("ack", help=_("Acknowledge an alarm: someone has seen it and is on it."))
def acknowledge(
    config: ConfigOption,
    alarm_id: Annotated[str, typer.Argument(help=_("the alarm's id"))],
    by: ByOption,
) -> None:
    with alarm_book(config) as book:
        alarm = book.acknowledge(alarm_id, by, datetime.now(UTC))
    console.print(
        _("alarm {alarm} acknowledged by {who}").format(alarm=alarm.id, who=alarm.acked_by)
    )


@alarms_app.command(
    "silence",
    help=_("Raise nothing for a rule, a box or both for a while (a maintenance window)."),
)
def silence(
    config: ConfigOption,
    by: ByOption,
    reason: Annotated[str, typer.Option(help=_("why, for the history"))],
    for_: Annotated[str, typer.Option("--for", help=_("how long: 30m, 2h, 1d"))],
    rule: Annotated[str | None, typer.Option(help=_("the rule silenced"))] = None,
    device: Annotated[str | None, typer.Option(help=_("the box silenced"))] = None,
) -> None:
    if rule is None and device is None:
        raise fail(ValueError(_("name --rule, --device or both")))
    settings = settings_of(config).alarms
    if rule is not None and settings is not None and rule not in {r.name for r in settings.rules}:
        problem = _("no rule {rule}").format(rule=repr(rule))
        raise fail(ValueError(f"{config}: alarms.rules: {problem}"))
    now = datetime.now(UTC)
    with alarm_book(config) as book:
        done = book.silence(rule, device, now + parse_window(for_), by, reason, now)
    console.print(
        _("silenced rule {rule} on device {device} until {until} UTC").format(
            rule=done.rule or "*", device=done.device or "*", until=when_text(done.until, False)
        )
    )
