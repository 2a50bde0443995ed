"""The door of the API: a request without a valid bearer token is refused before a byte of
its body is read, and no body is taken past `api.max_body_mb`.

FastAPI resolves dependencies, the token check among them, only after it has read and
parsed the body; an unauthenticated 100 MB POST was read whole before its 401. So this is
pure ASGI middleware in front of the routes: it answers from the headers alone, and hands
the app a `receive` that counts the body as it streams in, whether its length was declared
or it comes in chunks. A refused request that came with a body is answered with
`Connection: close`, so the rest of it is not read either.

Every path needs a token but the documentation's when `api.docs` is `public`; roles are
checked by the routes (collector/api/auth.py), against the user this guard found.
"""

from datetime import UTC, datetime

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.users import User, Users

_USER_KEY = "collector.user"
TOKEN_REQUIRED = "a valid bearer token is required (collector users add)"  # noqa: S105


def authenticated(request: Request) -> User | None:
    """The user whose token the guard accepted for this request."""
    user = request.scope.get(_USER_KEY)
    return user if isinstance(user, User) else None


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
        self._too_large = f"the request body is larger than {max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = None
        if scope["path"] not in self._open_paths:
            refusal = await self._authenticate(scope, headers)
        declared = headers.get("content-length", "")
        if refusal is None and declared.isdigit() and int(declared) > self._max_body:
            refusal = JSONResponse({"detail": self._too_large}, 413)
        if refusal is not None:
            if _has_body(headers):
                refusal.headers["Connection"] = "close"
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    async def _authenticate(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        """None when the token is good (its user is then in the scope), else the 401."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = await run_in_threadpool(self._users.authenticate, token.strip())
        if user is None:
            return JSONResponse(
                {"detail": TOKEN_REQUIRED}, 401, headers={"WWW-Authenticate": "Bearer"}
            )
        if user.expired(datetime.now(UTC)):
            expires = user.expires.isoformat(timespec="seconds") if user.expires else ""
            return JSONResponse(
                {"detail": f"the token of {user.name} expired at {expires}; ask for a new one"},
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        scope[_USER_KEY] = user
        return None

    def _counting(self, receive: Receive) -> Receive:
        """`receive` that refuses the body once it passes the limit. The error is an
        HTTPException, which FastAPI lets through from body reading to its handler: 413."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    raise HTTPException(413, self._too_large, headers={"Connection": "close"})
            return message

        return counted
