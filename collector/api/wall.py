"""The operations center's wall: its pages, its layout, the environment figures and the
live stream, for every role that signs in (collector/wall/).

Every screen is the same page (collector/wall/pages/wall.html): the URL says which
scenario, or which single panel, it shows, and the page asks `/wall/api/layout` what that
means. Device states and measurements are shown to everyone on duty; a plate is shown to
police sessions alone, the others see that an alert happened and where.

A screen speaks the language its URL asks (`?lang=vi`), else its scenario's or the wall's
configured one, else the browser's; the page carries the translations its script uses.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from collector.api.auth import role_in
from collector.api.context import Context
from collector.api.guard import Recheck
from collector.api.texts import Refusal, chosen_language
from collector.api.users import Role, User
from collector.wall.environment import EnvironmentView
from collector.wall.live import LiveFeed
from collector.wall.rendering import PAGES, fill, texts
from collector.wall.scenarios import PANELS
from iotruntime.i18n import N_

router = APIRouter(tags=["wall"])
Viewer = Annotated[User, Depends(role_in(frozenset(Role)))]
_PAGE = (PAGES / "wall.html").read_text()
_STATIC = Path(__file__).parent.parent / "wall" / "static"
KEEPALIVE_S = 15.0


def feed_of(request: Request) -> LiveFeed:
    found: LiveFeed = request.app.state.live
    return found


def environment_of(request: Request) -> EnvironmentView:
    found: EnvironmentView = request.app.state.environment
    return found


Feed = Annotated[LiveFeed, Depends(feed_of)]
Environment = Annotated[EnvironmentView, Depends(environment_of)]
Lang = Annotated[str | None, Query(description="the screen's language: en or vi")]


def _page(language: str) -> HTMLResponse:
    return HTMLResponse(fill(_PAGE, language, lang=language, texts=texts(language)))


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(_STATIC / "vendor" / "favicon-32x32.png", media_type="image/png")


@router.get("/wall", include_in_schema=False)
def wall_home(_: Viewer, ctx: Context, request: Request, lang: Lang = None) -> RedirectResponse:
    home = f"/wall/scenario/{ctx.settings.wall.default}"
    if lang is not None:
        home += "?" + urlencode({"lang": chosen_language(request.headers, lang, None)})
    return RedirectResponse(home, 303)


@router.get("/wall/scenario/{name}", include_in_schema=False)
def wall_scenario(
    _: Viewer, ctx: Context, request: Request, name: str, lang: Lang = None
) -> HTMLResponse:
    wall = ctx.settings.wall
    if name not in wall.scenarios:
        raise Refusal(404, N_("no wall scenario {name}"), name=repr(name))
    return _page(chosen_language(request.headers, lang, wall.language_of(name)))


@router.get("/wall/panel/{panel}", include_in_schema=False)
def wall_panel(
    _: Viewer, ctx: Context, request: Request, panel: str, lang: Lang = None
) -> HTMLResponse:
    if panel not in PANELS:
        raise Refusal(
            404,
            N_("no wall panel {name} (panels: {panels})"),
            name=repr(panel),
            panels=", ".join(PANELS),
        )
    return _page(chosen_language(request.headers, lang, ctx.settings.wall.language_of(None)))


@router.get("/wall/api/layout", summary="A wall scenario: the grid and each screen's panel")
def layout(user: Viewer, ctx: Context, scenario: str | None = None) -> dict[str, Any]:
    wall = ctx.settings.wall
    name = scenario or wall.default
    chosen = wall.scenarios.get(name)
    if chosen is None:
        raise Refusal(
            404,
            N_("no wall scenario {name} (scenarios: {scenarios})"),
            name=repr(name),
            scenarios=", ".join(wall.scenarios),
        )
    return {
        "scenario": name,
        "scenarios": list(wall.scenarios),
        "grid": chosen.size,
        "screen": chosen.screen,
        "screens": chosen.screens,
        "panels": PANELS,
        "tiles_url": wall.tiles_url,
        "tiles_attribution": wall.tiles_attribution,
        "user": user.name,
        "role": user.role.value,
        "silent_after_s": ctx.settings.ingest.silent_after_s,
    }


@router.get(
    "/wall/api/environment",
    summary="Each station's latest means against the limits in force, and VN_AQI",
)
async def environment(
    _: Viewer, view: Environment, ctx: Context, request: Request, lang: Lang = None
) -> dict[str, Any]:
    language = chosen_language(request.headers, lang, ctx.settings.wall.language_of(None))
    return await view.current(language)


@router.get(
    "/wall/stream",
    summary="The wall's live feed: a snapshot, then samples, states, alerts and alarms",
    response_class=EventSourceResponse,
)
async def stream(
    user: Viewer, feed: Feed, ctx: Context, request: Request
) -> AsyncIterator[ServerSentEvent]:
    screen = feed.open(user.role.value)
    stopping = asyncio.create_task(ctx.stop.wait())
    recheck = Recheck(request, ctx.users)
    try:
        while not ctx.stop.is_set() and not await recheck.lapsed():
            getting = asyncio.create_task(screen.queue.get())
            done, _ = await asyncio.wait(
                {getting, stopping}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if getting not in done:
                getting.cancel()
                if not ctx.stop.is_set():
                    yield ServerSentEvent(comment="keepalive")
                continue
            event, data = getting.result()
            yield ServerSentEvent(raw_data=data, event=event)
    finally:
        stopping.cancel()
        feed.close(screen)
