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
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail

users_app = typer.Typer(no_args_is_help=True, help="API users: one bearer token each, with a role.")


def _users(config: Path) -> Users:
    settings = settings_of(config)
    if settings.api is None:
        raise fail(ValueError(f"{config}: api: the config has no api section"))
    return Users(settings.api.users_path)


def _state(user: User, now: datetime) -> str:
    if user.revoked:
        return "revoked"
    return "expired" if user.expired(now) else "active"


@users_app.command("add")
def users_add(
    config: ConfigOption,
    name: Annotated[str, typer.Argument(help="who the token is for")],
    role: Annotated[Role, typer.Option(help="what the token may read")],
    expires_days: Annotated[
        int,
        typer.Option(min=1, max=MAX_EXPIRY_DAYS, help="the token stops working after this"),
    ] = DEFAULT_EXPIRY_DAYS,
) -> None:
    """Add a user and print its token, once: only a hash of it is kept."""
    users = _users(config)
    try:
        token = users.add(name, role, expires_days)
    except UserError as exc:
        raise fail(exc) from None
    finally:
        users.close()
    console.print(f"token for {escape(name)} ({role}, {expires_days} days), shown this once:")
    print(token)


@users_app.command("list")
def users_list(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
    """Every user, its role, when its token expires, and whether it still works."""
    out = Output.of(csv_out, json_out)
    users = _users(config)
    now = datetime.now(UTC)
    found = users.all()
    users.close()
    rows = [
        (
            user.name,
            user.role.value,
            _state(user, now),
            user.created if out.machine else user.created[:19],
            _expiry(user, out),
            (user.revoked or "") if out.machine else (user.revoked or "")[:19],
        )
        for user in found
    ]
    emit(
        f"{len(rows)} user(s)",
        ("name", "role", "state", "created", "expires", "revoked"),
        rows,
        out,
    )


def _expiry(user: User, out: Output) -> str:
    if user.expires is None:
        return "" if out.machine else "never"
    return user.expires.isoformat() if out.machine else user.expires.isoformat()[:19]


@users_app.command("revoke")
def users_revoke(
    config: ConfigOption, name: Annotated[str, typer.Argument(help="the user to revoke")]
) -> None:
    """Stop a user's token from working, at once."""
    users = _users(config)
    try:
        users.revoke(name)
    except UserError as exc:
        raise fail(exc) from None
    finally:
        users.close()
    console.print(f"revoked {escape(name)}")


@users_app.command("password")
def users_password(
    config: ConfigOption,
    name: Annotated[str, typer.Argument(help="the user who signs in at a browser")],
    stdin: Annotated[
        bool, typer.Option("--stdin", help="read the password from standard input (scripts)")
    ] = False,
) -> None:
    """Set the password a user signs in with at the wall or any browser page; the
    sessions it had end."""
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    users = _users(config)
    try:
        users.set_password(name, password)
    except (UserError, PasswordError) as exc:
        raise fail(exc) from None
    finally:
        users.close()
    console.print(f"password set for {escape(name)}")
