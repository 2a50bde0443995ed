"""What every endpoint reaches through its request: the store, the users, the config,
the police subsystem when it runs, and the event that says the collector is stopping.

The routers are module-level (each concern's endpoints in a module of its own, included
by collector/api/app.py); what they need is put on `app.state` once, when the app is
built, instead of being closed over by router factories.
"""

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from collector.api.texts import Refusal
from collector.api.users import Users
from collector.config import CollectorConfig
from collector.police.service import Police
from collector.stores.base import Store
from iotruntime.i18n import N_


@dataclass(frozen=True)
class ApiContext:
    store: Store
    users: Users
    settings: CollectorConfig
    police: Police | None
    stop: asyncio.Event


def context_of(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.context
    return found


def police_of(request: Request) -> Police:
    """The police subsystem; its router is included only when it runs."""
    police = context_of(request).police
    if police is None:
        raise Refusal(404, N_("the collector runs without an alerts section"))
    return police


Context = Annotated[ApiContext, Depends(context_of)]
PoliceDep = Annotated[Police, Depends(police_of)]
