"""The door of the API: a request without a valid bearer token is refused before a byte of
its body is read, and no body is taken past `api.max_body_mb`.

FastAPI resolves dependencies, the token check among them, only after it has read and
parsed the body; an unauthenticated 100 MB POST was read whole before its 401. So this is
pure ASGI middleware in front of the routes: it answers from the headers alone, and hands
the app a `receive` that counts the body as it streams in, whether its length was declared
or it comes in chunks. A refused request that came with a body is answered with
`Connection: close`, so the rest of it is not read either.

Every path needs a token but the documentation's when `api.docs` is `public`, the sign-in
page and the wall's static files; roles are checked by the routes (collector/api/auth.py),
against the user this guard found.

A browser has no token: it signs in (collector/api/sign_in.py) and sends the session
cookie, which the guard takes for reading only (GET and HEAD) and for signing out. A page
cannot be made to change anything on behalf of a signed-in person, whatever site it comes
from; changes (acknowledging, dispatching) stay with tokens. A browser asking for a page
without a session is sent to the sign-in page rather than shown a 401.
"""

import time
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.texts import Refusal, language_of, translated
from collector.api.users import User, Users
from iotruntime.i18n import N_

_USER_KEY = "collector.user"
_CREDENTIAL_KEY = "collector.credential"
RECHECK_S = 30.0
TOKEN_REQUIRED = N_("a valid bearer token is required (collector users add)")
SESSION_COOKIE = "pq_session"
SIGN_IN_PATH = "/login"
SIGN_OUT_PATH = "/logout"
# Served to anyone: the sign-in page, the wall's scripts, styles and outline, the icon, and
# the release bundles the boxes fetch (api/releases.py: trusted by their signed digest).
OPEN_PREFIXES = (SIGN_IN_PATH, "/wall/static/", "/favicon.ico", "/releases/")
SESSION_METHODS = frozenset({"GET", "HEAD"})
SESSION_ENDED = N_("your session has ended or is not valid; sign in again at /login")
SESSION_READS = N_("a browser session may only read; a change needs a bearer token")
TOKEN_EXPIRED = N_("the token of {name} expired at {expires}; ask for a new one")
TOO_LARGE = N_("the request body is larger than {limit} bytes")


def authenticated(request: Request) -> User | None:
    """The user whose token the guard accepted for this request."""
    user = request.scope.get(_USER_KEY)
    return user if isinstance(user, User) else None


def still_valid(request: Request, users: Users) -> bool:
    """Whether the token or session this request came with still works: a stream open
    for hours must end when its user is revoked, its token expires or its session ends,
    as the next request would be refused."""
    kind, secret = request.scope.get(_CREDENTIAL_KEY, ("", ""))
    now = datetime.now(UTC)
    if kind == SESSION_COOKIE:
        return users.in_session(secret, now) is not None
    user = users.authenticate(secret) if kind == "token" else None
    return user is not None and not user.expired(now)


class Recheck:
    """`still_valid`, asked at most every `RECHECK_S` by a stream's loop."""

    def __init__(self, request: Request, users: Users) -> None:
        self._request, self._users = request, users
        self._at = time.monotonic()

    async def lapsed(self) -> bool:
        if time.monotonic() - self._at < RECHECK_S:
            return False
        self._at = time.monotonic()
        return not await run_in_threadpool(still_valid, self._request, self._users)


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


class RequestGuard:
    def __init__(
        self, app: ASGIApp, users: Users, max_body_bytes: int, open_paths: frozenset[str]
    ) -> None:
        self.app = app
        self._users = users
        self._max_body = max_body_bytes
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal: Response | None = None
        path = scope["path"]
        if path not in self._open_paths and not path.startswith(OPEN_PREFIXES):
            refusal = await self._authenticate(scope, headers)
        declared = headers.get("content-length", "")
        if refusal is None and declared.isdigit() and int(declared) > self._max_body:
            refusal = _refusal(headers, 413, TOO_LARGE, limit=self._max_body)
        if refusal is not None:
            if _has_body(headers):
                refusal.headers["Connection"] = "close"
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    async def _authenticate(self, scope: Scope, headers: Headers) -> Response | None:
        """None when the token or session is good (its user is then in the scope), else
        the 401, or for a browser asking for a page, the way to the sign-in page."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return await self._by_token(scope, headers, token.strip())
        session = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        usable = scope["method"] in SESSION_METHODS or scope["path"] == SIGN_OUT_PATH
        if session and usable:
            user = await run_in_threadpool(self._users.in_session, session, datetime.now(UTC))
            if user is not None:
                scope[_USER_KEY] = user
                scope[_CREDENTIAL_KEY] = (SESSION_COOKIE, session)
                return None
        if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            back = quote(scope["path"] + _query(scope), safe="")
            return RedirectResponse(f"{SIGN_IN_PATH}?next={back}", 303)
        detail = TOKEN_REQUIRED
        if session:
            detail = SESSION_ENDED if usable else SESSION_READS
        return _refusal(headers, 401, detail, {"WWW-Authenticate": "Bearer"})

    async def _by_token(self, scope: Scope, headers: Headers, token: str) -> JSONResponse | None:
        user = await run_in_threadpool(self._users.authenticate, token)
        if user is None:
            return _refusal(headers, 401, TOKEN_REQUIRED, {"WWW-Authenticate": "Bearer"})
        if user.expired(datetime.now(UTC)):
            expires = user.expires.isoformat(timespec="seconds") if user.expires else ""
            return _refusal(
                headers,
                401,
                TOKEN_EXPIRED,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                name=user.name,
                expires=expires,
            )
        scope[_USER_KEY] = user
        scope[_CREDENTIAL_KEY] = ("token", token)
        return None

    def _counting(self, receive: Receive) -> Receive:
        """`receive` that refuses the body once it passes the limit. The error is an
        HTTPException (a `Refusal`), which FastAPI lets through from body reading to its handler:
        413, in the asker's language."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    raise Refusal(413, TOO_LARGE, {"Connection": "close"}, limit=self._max_body)
            return message

        return counted


def _refusal(
    headers: Headers,
    status: int,
    text: str,
    extra: dict[str, str] | None = None,
    **values: object,
) -> JSONResponse:
    """The guard's own answer, before any route: in the asker's language, as the app's."""
    detail = translated(text, language_of(headers), **values)
    return JSONResponse({"detail": detail}, status, headers=extra)


def _query(scope: Scope) -> str:
    raw = scope.get("query_string", b"")
    return "?" + raw.decode("latin-1") if raw else ""
