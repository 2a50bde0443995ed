"""Who is calling the API: a bearer token resolved to a user with one role, checked
against the roles an endpoint admits. A missing or unknown token is 401, a known user
with the wrong role 403."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collector.api.context import context_of
from collector.api.users import EXPORT_READERS, TELEMETRY_READERS, Role, User

_bearer = HTTPBearer(auto_error=False)


def role_in(allowed: frozenset[Role]) -> Callable[..., User]:
    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> User:
        users = context_of(request).users
        user = users.authenticate(credentials.credentials) if credentials else None
        if user is None:
            raise HTTPException(
                401,
                "a valid bearer token is required (collector users add)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if user.role not in allowed:
            raise HTTPException(403, f"role {user.role} may not use this")
        return user

    return check


TelemetryReader = Annotated[User, Depends(role_in(TELEMETRY_READERS))]
ExportReader = Annotated[User, Depends(role_in(EXPORT_READERS))]
Officer = Annotated[User, Depends(role_in(frozenset({Role.POLICE})))]
