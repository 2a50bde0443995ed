"""`collector users`: who may call the API, one bearer token each, with a role and an
expiry."""

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collector.api.passwords import PasswordError
from collector.api.users import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, Role, User, UserError, Users
from collector.cli.common import ConfigOption, settings_of
from collector.i18n import _
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail

users_app = typer.Typer(
    no_args_is_help=True, help=_("API users: one bearer token each, with a role.")
)


def _users(config: Path) -> Users:
    settings = settings_of(config)
    if settings.api is None:
        problem = _("the config has no api section")
        raise fail(ValueError(f"{config}: api: {problem}"))
    return Users(settings.api.users_path)


def _state(user: User, now: datetime, machine: bool) -> str:
    if user.revoked:
        return "revoked" if machine else _("revoked")
    if user.expired(now):
        return "expired" if machine else _("expired")
    return "active" if machine else _("active")


@users_app.command(
    "add", help=_("Add a user and print its token, once: only a hash of it is kept.")
)
def users_add(
    config: ConfigOption,
    name: Annotated[str, typer.Argument(help=_("who the token is for"))],
    role: Annotated[Role, typer.Option(help=_("what the token may read"))],
    expires_days: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_EXPIRY_DAYS, help=_("days: the token stops working after this")
        ),
    ] = DEFAULT_EXPIRY_DAYS,
) -> None:
    users = _users(config)
    try:
        token = users.add(name, role, expires_days)
    except UserError as exc:
        raise fail(exc) from None
    finally:
        users.close()
    console.print(
        _("token for {name} ({role}, {days} days), shown this once:").format(
            name=escape(name), role=role, days=expires_days
        )
    )
    print(token)


@users_app.command(
    "list", help=_("Every user, its role, when its token expires, and whether it still works.")
)
def users_list(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
    out = Output.of(csv_out, json_out)
    users = _users(config)
    now = datetime.now(UTC)
    found = users.all()
    users.close()
    rows = [
        (
            user.name,
            user.role.value,
            _state(user, now, out.machine),
            user.created if out.machine else user.created[:19],
            _expiry(user, out),
            (user.revoked or "") if out.machine else (user.revoked or "")[:19],
        )
        for user in found
    ]
    emit(
        _("{count} user(s)").format(count=len(rows)),
        ("name", "role", "state", "created", "expires", "revoked"),
        rows,
        out,
        labels=(_("name"), _("role"), _("state"), _("created"), _("expires"), _("revoked")),
    )


def _expiry(user: User, out: Output) -> str:
    if user.expires is None:
        return "" if out.machine else _("never")
    return user.expires.isoformat() if out.machine else user.expires.isoformat()[:19]


@users_app.command("revoke", help=_("Stop a user's token from working, at once."))
def users_revoke(
    config: ConfigOption, name: Annotated[str, typer.Argument(help=_("the user to revoke"))]
) -> None:
    users = _users(config)
    try:
        users.revoke(name)
    except UserError as exc:
        raise fail(exc) from None
    finally:
        users.close()
    console.print(_("revoked {name}").format(name=escape(name)))


@users_app.command(
    "password",
    help=_(
        "Set the password a user signs in with at the wall or any browser page; the"
        " sessions it had end."
    ),
)
def users_password(
    config: ConfigOption,
    name: Annotated[str, typer.Argument(help=_("the user who signs in at a browser"))],
    stdin: Annotated[
        bool, typer.Option("--stdin", help=_("read the password from standard input (scripts)"))
    ] = False,
) -> None:
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(_("password"), hide_input=True, confirmation_prompt=True)
    users = _users(config)
    try:
        users.set_password(name, password)
    except (UserError, PasswordError) as exc:
        raise fail(exc) from None
    finally:
        users.close()
    console.print(_("password set for {name}").format(name=escape(name)))
