"""Who is calling the API: a bearer token resolved to a user with one role, checked
against the roles an endpoint admits. A missing or unknown token is 401, a known user
with the wrong role 403."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collector.users import Role, User, Users

_bearer = HTTPBearer(auto_error=False)


def role_in(users: Users, allowed: frozenset[Role]) -> Callable[..., User]:
    def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> User:
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
