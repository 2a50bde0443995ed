"""Who is calling the API: the user whose bearer token the guard accepted
(collector/api/guard.py), checked against the roles an endpoint admits. A missing,
unknown, revoked or expired token is 401, from the guard; a known user with the wrong role
403, from here."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collector.api.guard import TOKEN_REQUIRED, authenticated
from collector.api.texts import Refusal
from collector.api.users import EXPORT_READERS, TELEMETRY_READERS, Role, User
from iotruntime.i18n import N_

# Read by the guard; declared here so the OpenAPI document shows the scheme.
_bearer = HTTPBearer(auto_error=False)


def role_in(allowed: frozenset[Role]) -> Callable[..., User]:
    def check(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> User:
        user = authenticated(request)
        if user is None:  # a route on a path the guard leaves open: refused all the same
            raise Refusal(401, TOKEN_REQUIRED, {"WWW-Authenticate": "Bearer"})
        if user.role not in allowed:
            raise Refusal(403, N_("role {role} may not use this"), role=user.role)
        return user

    return check


TelemetryReader = Annotated[User, Depends(role_in(TELEMETRY_READERS))]
ExportReader = Annotated[User, Depends(role_in(EXPORT_READERS))]
Officer = Annotated[User, Depends(role_in(frozenset({Role.POLICE})))]
