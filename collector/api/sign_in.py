"""Signing in at a browser: the wall's screens and the people at desks use the same users
and roles as programs, with a password (`collector users password`) in place of the token
and a session cookie the guard (collector/api/guard.py) accepts for reading.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
it) and Secure when the API is on https. Guessing is slowed per user name: after
`MAX_FAILURES` wrong passwords within `LOCKOUT`, that name is refused until the window
passes, and every failure is logged with where it came from.
"""

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from collector.api.context import Context
from collector.api.guard import SESSION_COOKIE, SIGN_IN_PATH, SIGN_OUT_PATH, authenticated
from collector.api.texts import Refusal, chosen_language, translated
from collector.api.users import SESSION_HOURS, Role
from collector.wall.rendering import PAGES, fill
from iotruntime.i18n import N_, language_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-in"])
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_FORM_BYTES = 4096
WALL_HOME = "/wall"
_PAGE = (PAGES / "login.html").read_text()
WRONG = N_("Wrong user name or password.")
LOCKED = N_("Too many wrong passwords: try again in 15 minutes.")


class Failures:
    """Recent wrong passwords per user name, in memory: a restart forgives them, which
    costs an attacker a collector restart per five guesses. Only failures of the last
    `LOCKOUT` are kept, so guesses at endless made-up names cannot fill the memory."""

    def __init__(self) -> None:
        self._at: dict[str, deque[datetime]] = {}

    def locked(self, name: str, now: datetime) -> bool:
        self._forget(now)
        return len(self._at.get(name, ())) >= MAX_FAILURES

    def add(self, name: str, now: datetime) -> None:
        self._at.setdefault(name, deque()).append(now)

    def _forget(self, now: datetime) -> None:
        for name in list(self._at):
            recent = self._at[name]
            while recent and now - recent[0] > LOCKOUT:
                recent.popleft()
            if not recent:
                del self._at[name]


class Whoami(BaseModel):
    name: str
    role: Role


def _page(message: str, back: str, status: int, language: str) -> HTMLResponse:
    shown = translated(message, language) if message else ""
    return HTMLResponse(
        fill(_PAGE, language, lang=language, message=escape(shown), next=escape(back, quote=True)),
        status,
    )


def _asked_in(back: str) -> str | None:
    """The language the page a person is signing in for asks (`/wall?lang=vi`), so the
    sign-in page on the way there speaks it too; None when it asks none we speak."""
    asked = parse_qs(urlsplit(back).query).get("lang")
    return language_of(asked[0]) if asked else None


def _local(back: str) -> str:
    """Only a path of this server: a link that signs in and then sends the person to
    another site is refused."""
    if back.startswith("/") and not back.startswith("//") and "\\" not in back:
        return back
    return WALL_HOME


@router.get(SIGN_IN_PATH, include_in_schema=False)
def sign_in_page(
    request: Request, ctx: Context, next: str = WALL_HOME, lang: str | None = None
) -> HTMLResponse:
    back = _local(next)
    configured = _asked_in(back) or ctx.settings.wall.language
    return _page("", back, 200, chosen_language(request.headers, lang, configured))


@router.post(SIGN_IN_PATH, include_in_schema=False)
async def sign_in(request: Request, ctx: Context) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refusal(413, N_("the sign-in form is too large"))
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    name, password = form.get("name", "").strip(), form.get("password", "")
    back = _local(form.get("next", WALL_HOME))
    asked = language_of(form.get("lang", ""))  # the page's own: refused values fall back
    language = chosen_language(request.headers, None, asked or ctx.settings.wall.language)
    now = datetime.now(UTC)
    failures: Failures = request.app.state.sign_in_failures
    where = request.client.host if request.client else "?"
    if failures.locked(name, now):
        log.warning("sign-in refused for %r from %s: too many wrong passwords", name, where)
        return _page(LOCKED, back, 429, language)
    found = await asyncio.to_thread(ctx.users.sign_in, name, password, now)
    if found is None:
        failures.add(name, now)
        log.warning("wrong sign-in for %r from %s", name, where)
        return _page(WRONG, back, 401, language)
    user, session = found
    log.info("%s (%s) signed in from %s", user.name, user.role, where)
    answer = RedirectResponse(back, 303)
    answer.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.api is not None and ctx.settings.api.scheme == "https",
    )
    return answer


@router.post(SIGN_OUT_PATH, include_in_schema=False)
async def sign_out(request: Request, ctx: Context) -> Response:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        await asyncio.to_thread(ctx.users.sign_out, session)
    answer = RedirectResponse(SIGN_IN_PATH, 303)
    answer.delete_cookie(SESSION_COOKIE)
    return answer


@router.get("/whoami", summary="Who the token or session belongs to, and its role")
def whoami(request: Request) -> Whoami:
    user = authenticated(request)
    if user is None:
        raise Refusal(401, N_("sign in first"))
    return Whoami(name=user.name, role=user.role)
