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
from collector.i18n import _, ngettext
from collector.police import audit
from collector.police.database import PoliceDb, PoliceDbError
from collector.police.deliveries import Deliveries
from collector.police.dispatch import DispatchError, Dispatches
from collector.police.records import AlertError, AlertLog, AlertRecord
from collector.police.retention import purge
from collector.police.watchlist import Priority, Watchlist, WatchlistError
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail

watchlist_app = typer.Typer(
    no_args_is_help=True, help=_("The police watchlist: plates every camera watches for.")
)
ByOption = Annotated[str, typer.Option("--by", help=_("who makes the change (for the audit log)"))]
WHEN_HELP = _("15m, 2h, 7d or an ISO time")
AlertIdArgument = Annotated[str, typer.Argument(help=_("the alert's id"))]


def alert_settings(config: Path) -> AlertSettings:
    settings = settings_of(config)
    if settings.alerts is None:
        problem = _("the config has no alerts section")
        raise fail(ValueError(f"{config}: alerts: {problem}"))
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


@watchlist_app.command("add", help=_("Add a plate to the watchlist, or update its entry."))
def watchlist_add(
    config: ConfigOption,
    plate: Annotated[str, typer.Argument(help=_("as written: 68-B1 234.56, 68A-123.45, ..."))],
    reason: Annotated[str, typer.Option(help=_("why the plate is watched"))],
    by: ByOption,
    priority: Annotated[Priority, typer.Option(help=_("how urgent an alert is"))] = Priority.NORMAL,
    expires: Annotated[
        str | None, typer.Option(help=_("ISO time the entry stops matching (UTC if no zone)"))
    ] = None,
) -> None:
    until = parse_when(expires, datetime.now(UTC)) if expires else None
    with _watchlist(config) as watchlist:
        entry, new = watchlist.add(plate, reason, by, priority, until)
    done = _("added {plate} ({canonical})") if new else _("updated {plate} ({canonical})")
    console.print(done.format(plate=entry.display, canonical=entry.plate))


@watchlist_app.command("remove", help=_("Take a plate off the watchlist."))
def watchlist_remove(
    config: ConfigOption,
    plate: Annotated[str, typer.Argument(help=_("the plate, in any written form"))],
    by: ByOption,
) -> None:
    with _watchlist(config) as watchlist:
        entry = watchlist.remove(plate, by)
    console.print(
        _("removed {plate} ({canonical})").format(plate=entry.display, canonical=entry.plate)
    )


@watchlist_app.command("list", help=_("Every entry, with whether it still matches."))
def watchlist_list(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
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
            _yes_no(e.active(now), out.machine),
            e.added_by,
            when_text(e.added_at, out.machine),
        )
        for e in entries
    ]
    labels = (
        _("plate"),
        _("display"),
        _("reason"),
        _("priority"),
        _("expires"),
        _("active"),
        _("added_by"),
        _("added_at"),
    )
    count = len(rows)
    title = ngettext("{count} watchlist entry", "{count} watchlist entries", count)
    emit(title.format(count=count), header, rows, out, labels=labels)


def _yes_no(value: bool, machine: bool) -> str:
    if machine:
        return "yes" if value else "no"
    return _("yes") if value else _("no")


@watchlist_app.command(
    "import",
    help=_("Add or update many plates; a bad row is reported by line and the rest imported."),
)
def watchlist_import(
    config: ConfigOption,
    file: Annotated[Path, typer.Argument(help=_("CSV: plate,reason[,priority][,expires]"))],
    by: ByOption,
) -> None:
    try:
        with _watchlist(config) as watchlist, file.open(encoding="utf-8", newline="") as source:
            result = watchlist.import_csv(source, by)
    except OSError as exc:
        raise fail(exc) from None
    for line, message in result.errors:
        where = _("line {line}:").format(line=line)
        console.print(f"[red]{where}[/red] {escape(message)}", highlight=False)
    console.print(
        _("{added} added, {updated} updated, {rejected} rejected").format(
            added=result.added, updated=result.updated, rejected=len(result.errors)
        )
    )
    if result.errors:
        raise typer.Exit(1)


AUDIT_HELP = _("The police data's audit trail, oldest first.")


def audit_log(
    config: ConfigOption,
    since: Annotated[str | None, typer.Option(help=WHEN_HELP)] = None,
    action: Annotated[str | None, typer.Option(help=_("e.g. watchlist.add"))] = None,
    subject: Annotated[str | None, typer.Option(help=_("a plate or an alert id"))] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
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
        _("{count} audit record(s)").format(count=len(rows)),
        ("at", "actor", "action", "subject", "detail"),
        rows,
        Output(),
        labels=(_("at"), _("actor"), _("action"), _("subject"), _("detail")),
    )


alerts_app = typer.Typer(
    no_args_is_help=True, help=_("Plate alerts: list, acknowledge, dead letters, retention.")
)


def _state(record: AlertRecord, machine: bool) -> str:
    if machine:
        return f"acknowledged by {record.acked_by}" if record.acked_by else "open"
    if record.acked_by:
        return _("acknowledged by {who}").format(who=record.acked_by)
    return _("open")


@alerts_app.command("list", help=_("Alerts raised, newest first."))
def alerts_list(
    config: ConfigOption,
    since: Annotated[str, typer.Option(help=WHEN_HELP)] = "1d",
    open_only: Annotated[bool, typer.Option("--open", help=_("only unacknowledged"))] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=100_000, help=_("at most this many, newest first"))
    ] = 100,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
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
            _state(r, out.machine),
        )
        for r in found
    ]
    labels = (
        _("id"),
        _("time"),
        _("plate"),
        _("match"),
        _("watched"),
        _("priority"),
        _("pole"),
        _("camera"),
        _("state"),
    )
    emit(_("{count} alert(s)").format(count=len(rows)), header, rows, out, labels=labels)


@alerts_app.command("ack", help=_("Acknowledge an alert: an officer has it in hand."))
def alerts_ack(
    config: ConfigOption,
    alert_id: AlertIdArgument,
    by: ByOption,
    note: Annotated[str, typer.Option(help=_("what is being done about it"))] = "",
) -> None:
    with police_db(config) as db:
        record = AlertLog(db).acknowledge(alert_id, by, note)
    console.print(
        _("acknowledged {plate} ({alert}) by {who}").format(
            plate=record.alert.display, alert=alert_id, who=escape(by)
        )
    )


@alerts_app.command(
    "dispatch",
    help=_(
        "The police units an alert went to and their answers; with --unit and --by, that"
        " unit's acknowledgement."
    ),
)
def alerts_dispatch(
    config: ConfigOption,
    alert_id: AlertIdArgument,
    unit: Annotated[
        str | None, typer.Option(help=_("acknowledge for this unit: it is on its way"))
    ] = None,
    by: Annotated[str | None, typer.Option(help=_("who acknowledges (for the audit log)"))] = None,
    note: Annotated[str, typer.Option(help=_("what the unit is doing"))] = "",
) -> None:
    if (unit is None) != (by is None):
        raise fail(ValueError(_("--unit and --by go together: who acknowledges for which unit")))
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
        _("alert {alert}: {count} unit(s)").format(alert=alert_id, count=len(rows)),
        ("unit", "sent", "acknowledged", "by", "note"),
        rows,
        Output(),
        labels=(_("unit"), _("sent"), _("acknowledged"), _("by"), _("note")),
    )
    if found.escalated_at is not None:
        console.print(
            _("escalated to the duty desk {when}: {escalation}").format(
                when=when_text(found.escalated_at, False), escalation=found.escalation
            ),
            highlight=False,
        )


@alerts_app.command(
    "dead", help=_("Deliveries that used up their attempts: the dead-letter record.")
)
def alerts_dead(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
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
    labels = (
        _("alert"),
        _("plate"),
        _("channel"),
        _("attempts"),
        _("last error"),
        _("given up"),
    )
    count = len(rows)
    title = ngettext("{count} dead delivery", "{count} dead deliveries", count)
    emit(title.format(count=count), header, rows, out, labels=labels)


@alerts_app.command(
    "retry", help=_("Send an alert's dead deliveries again (a running collector picks them up).")
)
def alerts_retry(config: ConfigOption, alert_id: AlertIdArgument, by: ByOption) -> None:
    with police_db(config) as db:
        requeued = Deliveries(db).retry(alert_id, by)
    if not requeued:
        raise fail(ValueError(_("alert {alert} has no dead delivery").format(alert=alert_id)))
    done = ngettext(
        "{count} delivery of {alert} requeued", "{count} deliveries of {alert} requeued", requeued
    )
    console.print(done.format(count=requeued, alert=alert_id))


@alerts_app.command(
    "purge",
    help=_(
        "Remove plate reads and alerts past their retention now (`collector run` does it"
        " every alerts.purge_every_s)."
    ),
)
def alerts_purge(config: ConfigOption) -> None:
    settings = alert_settings(config)
    with police_db(config) as db:
        purged = purge(db, settings.reads_days, settings.alerts_days)
    console.print(
        _("purged {reads} plate read(s) and {alerts} alert(s)").format(
            reads=purged.reads, alerts=purged.alerts
        )
    )
