"""`GET /plates/search`: where and when a plate was seen, for police only, each search
audited with the officer and its purpose (collector/police/search.py)."""

from datetime import datetime
from typing import Annotated, Literal, Self

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel

from collector.api.auth import Officer
from collector.api.context import PoliceDep
from collector.fleet.registry import RegisteredDevice
from collector.police.areas import AreaError, parse_area
from collector.police.search import (
    MAX_RESULTS,
    PlateQuery,
    SearchError,
    Sighting,
    normalised,
    scope,
    search,
)

router = APIRouter(tags=["police"])


class SightingOut(BaseModel):
    plate: str
    display: str
    match: str
    device: str
    pole: str | None
    site: str
    camera: str
    lat: float | None
    lon: float | None
    ts: datetime
    confidence: float
    colour: str | None
    crop_jpeg_b64: str | None

    @classmethod
    def of(cls, s: Sighting, pole: RegisteredDevice | None, crops: bool) -> Self:
        where = pole.location if pole else None
        return cls(
            plate=s.plate,
            display=s.display,
            match=s.match.value,
            device=s.device,
            pole=pole.name if pole else None,
            site=s.site,
            camera=s.camera,
            lat=where.lat if where else None,
            lon=where.lon if where else None,
            ts=s.ts,
            confidence=s.confidence,
            colour=s.colour,
            crop_jpeg_b64=s.crop_jpeg_b64 if crops else None,
        )


class SearchOut(BaseModel):
    pattern: str
    plates: list[str]
    sightings: list[SightingOut]


@router.get(
    "/plates/search",
    summary="Where and when a plate was seen: exact, with ? and * wildcards, or fuzzy",
)
def plate_search(
    officer: Officer,
    police: PoliceDep,
    q: Annotated[str, Query(description="the plate: 51F-123.45, 51F-12?.?5, *6273")],
    purpose: Annotated[str, Query(description="why: a case number or report reference")],
    fuzzy: bool = False,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    site: Annotated[list[str] | None, Query()] = None,
    device: Annotated[list[str] | None, Query()] = None,
    camera: str | None = None,
    area: Annotated[str | None, Query(description="lat,lon;lat,lon;lat,lon...")] = None,
    order: Literal["newest", "oldest"] = "newest",
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 200,
    crops: bool = True,
) -> SearchOut:
    try:
        where = parse_area(area) if area else None
        devices = scope(police.registry, site or (), device or (), where)
        query = PlateQuery(
            q,
            purpose,
            fuzzy=fuzzy,
            since=since,
            until=until,
            devices=devices,
            camera=camera,
            oldest_first=order == "oldest",
            limit=limit,
            filters={
                k: v
                for k, v in {"site": site, "device": device, "camera": camera, "area": area}.items()
                if v
            },
        )
        found = search(police.db, query, officer.name, police.settings.reads_days)
        pattern = normalised(q)
    except (SearchError, AreaError) as exc:
        raise HTTPException(422, str(exc)) from None
    registry = police.registry
    poles = {d: registry.get(d) if registry else None for d in {s.device for s in found}}
    return SearchOut(
        pattern=pattern,
        plates=sorted({s.plate for s in found}),
        sightings=[SightingOut.of(s, poles[s.device], crops) for s in found],
    )
