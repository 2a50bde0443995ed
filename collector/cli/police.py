"""`collector watchlist`, `collector alerts` and `collector audit`: the police's side of
the command line, over the same library calls as the police API."""

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collector.cli.common import ConfigOption, parse_when, settings_of, when_text
from collector.config import AlertSettings
from collector.police import audit
from collector.police.database import PoliceDb, PoliceDbError
from collector.police.deliveries import Deliveries
from collector.police.dispatch import DispatchError, Dispatches
from collector.police.records import AlertError, AlertLog, AlertRecord
from collector.police.retention import purge
from collector.police.watchlist import Priority, Watchlist, WatchlistError
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail

watchlist_app = typer.Typer(
    no_args_is_help=True, help="The police watchlist: plates every camera watches for."
)
ByOption = Annotated[str, typer.Option("--by", help="who makes the change (for the audit log)")]


def alert_settings(config: Path) -> AlertSettings:
    settings = settings_of(config)
    if settings.alerts is None:
        raise fail(ValueError(f"{config}: alerts: the config has no alerts section"))
    return settings.alerts


@contextlib.contextmanager
def police_db(config: Path) -> Iterator[PoliceDb]:
    """The police database for one command; a request it refuses is an error line."""
    try:
        db = PoliceDb(alert_settings(config).path)
    except PoliceDbError as exc:
        raise fail(exc) from None
    try:
        yield db
    except (WatchlistError, AlertError, DispatchError) as exc:
        raise fail(exc) from None
    finally:
        db.close()


@contextlib.contextmanager
def _watchlist(config: Path) -> Iterator[Watchlist]:
    with police_db(config) as db:
        yield Watchlist(db)


@watchlist_app.command("add")
def watchlist_add(
    config: ConfigOption,
    plate: Annotated[str, typer.Argument(help="as written: 68-B1 234.56, 68A-123.45, ...")],
    reason: Annotated[str, typer.Option(help="why the plate is watched")],
    by: ByOption,
    priority: Annotated[Priority, typer.Option(help="how urgent an alert is")] = Priority.NORMAL,
    expires: Annotated[
        str | None, typer.Option(help="ISO time the entry stops matching (UTC if no zone)")
    ] = None,
) -> None:
    """Add a plate to the watchlist, or update its entry."""
    until = parse_when(expires, datetime.now(UTC)) if expires else None
    with _watchlist(config) as watchlist:
        entry, new = watchlist.add(plate, reason, by, priority, until)
    console.print(f"{'added' if new else 'updated'} {entry.display} ({entry.plate})")


@watchlist_app.command("remove")
def watchlist_remove(
    config: ConfigOption,
    plate: Annotated[str, typer.Argument(help="the plate, in any written form")],
    by: ByOption,
) -> None:
    """Take a plate off the watchlist."""
    with _watchlist(config) as watchlist:
        entry = watchlist.remove(plate, by)
    console.print(f"removed {entry.display} ({entry.plate})")


@watchlist_app.command("list")
def watchlist_list(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
    """Every entry, with whether it still matches."""
    out = Output.of(csv_out, json_out)
    with _watchlist(config) as watchlist:
        entries = watchlist.entries()
    now = datetime.now(UTC)
    header = ("plate", "display", "reason", "priority", "expires", "active", "added_by", "added_at")
    rows = [
        (
            e.plate,
            e.display,
            e.reason,
            e.priority.value,
            e.expires.isoformat() if e.expires else "",
            "yes" if e.active(now) else "no",
            e.added_by,
            when_text(e.added_at, out.machine),
        )
        for e in entries
    ]
    emit(f"{len(rows)} watchlist entr{'y' if len(rows) == 1 else 'ies'}", header, rows, out)


@watchlist_app.command("import")
def watchlist_import(
    config: ConfigOption,
    file: Annotated[Path, typer.Argument(help="CSV: plate,reason[,priority][,expires]")],
    by: ByOption,
) -> None:
    """Add or update many plates; a bad row is reported by line and the rest imported."""
    try:
        with _watchlist(config) as watchlist, file.open(encoding="utf-8", newline="") as source:
            result = watchlist.import_csv(source, by)
    except OSError as exc:
        raise fail(exc) from None
    for line, message in result.errors:
        console.print(f"[red]line {line}:[/red] {escape(message)}", highlight=False)
    console.print(f"{result.added} added, {result.updated} updated, {len(result.errors)} rejected")
    if result.errors:
        raise typer.Exit(1)


def audit_log(
    config: ConfigOption,
    since: Annotated[str | None, typer.Option(help="15m, 2h, 7d or an ISO time")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. watchlist.add")] = None,
    subject: Annotated[str | None, typer.Option(help="a plate or an alert id")] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    """The police data's audit trail, oldest first."""
    out = Output.of(csv_out, json_out)
    start = parse_when(since, datetime.now(UTC)) if since else None
    with police_db(config) as db:
        found = audit.records(db, since=start, action=action, subject=subject)
    if out.json:
        listed = [
            {"at": r.at.isoformat(), "actor": r.actor, "action": r.action,
             "subject": r.subject, "detail": r.detail}
            for r in found
        ]  # fmt: skip
        print(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    if out.csv:
        audit.write_csv(found, sys.stdout)
        return
    rows = [
        (
            when_text(r.at, False),
            r.actor,
            r.action,
            r.subject,
            json.dumps(r.detail, ensure_ascii=False),
        )
        for r in found
    ]
    emit(
        f"{len(rows)} audit record(s)",
        ("at", "actor", "action", "subject", "detail"),
        rows,
        Output(),
    )


alerts_app = typer.Typer(
    no_args_is_help=True, help="Plate alerts: list, acknowledge, dead letters, retention."
)


def _state(record: AlertRecord) -> str:
    return f"acknowledged by {record.acked_by}" if record.acked_by else "open"


@alerts_app.command("list")
def alerts_list(
    config: ConfigOption,
    since: Annotated[str, typer.Option(help="15m, 2h, 7d or an ISO time")] = "1d",
    open_only: Annotated[bool, typer.Option("--open", help="only unacknowledged")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    """Alerts raised, newest first."""
    out = Output.of(csv_out, json_out)
    with police_db(config) as db:
        found = AlertLog(db).recent(parse_when(since, datetime.now(UTC)), open_only, limit)
    header = ("id", "time", "plate", "match", "watched", "priority", "pole", "camera", "state")
    rows = [
        (
            r.alert.id,
            when_text(r.alert.ts, out.machine),
            r.alert.display,
            r.alert.match,
            r.alert.watched,
            r.alert.priority,
            r.alert.pole.name if r.alert.pole else r.alert.device,
            r.alert.camera,
            _state(r),
        )
        for r in found
    ]
    emit(f"{len(rows)} alert(s)", header, rows, out)


@alerts_app.command("ack")
def alerts_ack(
    config: ConfigOption,
    alert_id: Annotated[str, typer.Argument(help="the alert's id")],
    by: ByOption,
    note: Annotated[str, typer.Option(help="what is being done about it")] = "",
) -> None:
    """Acknowledge an alert: an officer has it in hand."""
    with police_db(config) as db:
        record = AlertLog(db).acknowledge(alert_id, by, note)
    console.print(f"acknowledged {record.alert.display} ({alert_id}) by {escape(by)}")


@alerts_app.command("dispatch")
def alerts_dispatch(
    config: ConfigOption,
    alert_id: Annotated[str, typer.Argument(help="the alert's id")],
    unit: Annotated[
        str | None, typer.Option(help="acknowledge for this unit: it is on its way")
    ] = None,
    by: Annotated[str | None, typer.Option(help="who acknowledges (for the audit log)")] = None,
    note: Annotated[str, typer.Option(help="what the unit is doing")] = "",
) -> None:
    """The police units an alert went to and their answers; with --unit and --by, that
    unit's acknowledgement."""
    if (unit is None) != (by is None):
        raise fail(ValueError("--unit and --by go together: who acknowledges for which unit"))
    with police_db(config) as db:
        dispatches = Dispatches(db)
        found = (
            dispatches.acknowledge(alert_id, unit, by, note)
            if unit is not None and by is not None
            else dispatches.of(alert_id)
        )
    rows = [
        (
            u.unit,
            when_text(u.created, False),
            when_text(u.acked_at, False) if u.acked_at else "",
            u.acked_by or "",
            u.ack_note or "",
        )
        for u in found.units
    ]
    emit(
        f"alert {alert_id}: {len(rows)} unit(s)",
        ("unit", "sent", "acknowledged", "by", "note"),
        rows,
        Output(),
    )
    if found.escalated_at is not None:
        console.print(
            f"escalated to the duty desk {when_text(found.escalated_at, False)}:"
            f" {found.escalation}",
            highlight=False,
        )


@alerts_app.command("dead")
def alerts_dead(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
    """Deliveries that used up their attempts: the dead-letter record."""
    out = Output.of(csv_out, json_out)
    with police_db(config) as db:
        found = Deliveries(db).dead()
    header = ("alert", "plate", "channel", "attempts", "last error", "given up")
    rows = [
        (
            d.alert.id,
            d.alert.display,
            d.channel,
            str(d.attempts),
            d.last_error or "",
            when_text(d.updated, out.machine),
        )
        for d in found
    ]
    emit(f"{len(rows)} dead deliver{'y' if len(rows) == 1 else 'ies'}", header, rows, out)


@alerts_app.command("retry")
def alerts_retry(
    config: ConfigOption,
    alert_id: Annotated[str, typer.Argument(help="the alert's id")],
    by: ByOption,
) -> None:
    """Send an alert's dead deliveries again (a running collector picks them up)."""
    with police_db(config) as db:
        requeued = Deliveries(db).retry(alert_id, by)
    if not requeued:
        raise fail(ValueError(f"alert {alert_id} has no dead delivery"))
    console.print(f"{requeued} deliver{'y' if requeued == 1 else 'ies'} of {alert_id} requeued")


@alerts_app.command("purge")
def alerts_purge(config: ConfigOption) -> None:
    """Remove plate reads and alerts past their retention now (`collector run` does it
    every alerts.purge_every_s)."""
    settings = alert_settings(config)
    with police_db(config) as db:
        purged = purge(db, settings.reads_days, settings.alerts_days)
    console.print(f"purged {purged.reads} plate read(s) and {purged.alerts} alert(s)")
