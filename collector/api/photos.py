"""Citizens' photos: upload one and get the plates read in it, see it again, put a plate
read in it on the watchlist (collector/police/photos.py). Police role only, every step
audited."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Self

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from collector.api.auth import Officer
from collector.api.context import PoliceDep
from collector.api.models import WatchEntryOut
from collector.api.texts import Refusal
from collector.police.photos import (
    MAX_PHOTO_BYTES,
    PhotoError,
    PhotoRecord,
    Photos,
    ReaderUnavailableError,
)
from collector.police.watchlist import Priority, WatchlistError
from iotruntime.i18n import N_

router = APIRouter(tags=["police"])


class PhotoPlateOut(BaseModel):
    plate: str
    display: str
    confidence: float
    box: tuple[int, int, int, int]
    colour: str | None
    crop_jpeg_b64: str | None


class PhotoOut(BaseModel):
    id: str
    uploaded: datetime
    by: str
    case: str
    plates: list[PhotoPlateOut]

    @classmethod
    def of(cls, photo: PhotoRecord) -> Self:
        return cls(
            id=photo.id,
            uploaded=photo.uploaded,
            by=photo.by,
            case=photo.case,
            plates=[PhotoPlateOut(**p.__dict__) for p in photo.plates],
        )


class PhotoWatchRequest(BaseModel):
    plate: str = Field(min_length=1, max_length=32, description="one of the plates read")
    reason: str = Field(default="", max_length=500)
    priority: Priority = Priority.HIGH


@router.post(
    "/photos",
    summary="Upload a citizen's photo (JPEG, PNG or WebP as the body): the plates in it",
    status_code=201,
)
async def upload(
    officer: Officer,
    police: PoliceDep,
    request: Request,
    case: Annotated[str, Query(min_length=1, description="the case number or report reference")],
) -> PhotoOut:
    image = await request.body()
    if len(image) > MAX_PHOTO_BYTES:
        raise Refusal(413, N_("a photo of at most {mb} MB"), mb=MAX_PHOTO_BYTES // 2**20)
    try:
        photo = await asyncio.to_thread(Photos(police.db).upload, image, officer.name, case)
    except PhotoError as exc:
        raise HTTPException(422, str(exc)) from None
    except ReaderUnavailableError as exc:
        raise HTTPException(503, str(exc)) from None
    return PhotoOut.of(photo)


@router.get("/photos/{photo_id}", summary="A photo's case and the plates read in it")
def photo(_: Officer, police: PoliceDep, photo_id: str) -> PhotoOut:
    try:
        return PhotoOut.of(Photos(police.db).get(photo_id))
    except PhotoError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/photos/{photo_id}/image", summary="The photo itself (each viewing is audited)")
def photo_image(officer: Officer, police: PoliceDep, photo_id: str) -> Response:
    try:
        image = Photos(police.db).image(photo_id, officer.name)
    except PhotoError as exc:
        raise HTTPException(404, str(exc)) from None
    media = "image/png" if image.startswith(b"\x89PNG") else "image/jpeg"
    if image.startswith(b"RIFF"):
        media = "image/webp"
    return Response(image, media_type=media)


@router.post("/photos/{photo_id}/watch", summary="Put a plate read in the photo on the watchlist")
def watch(
    officer: Officer, police: PoliceDep, photo_id: str, request: PhotoWatchRequest
) -> WatchEntryOut:
    photos = Photos(police.db)
    try:
        photos.get(photo_id)
    except PhotoError as exc:
        raise HTTPException(404, str(exc)) from None
    try:
        entry = photos.watch(
            photo_id, request.plate, request.reason, officer.name, request.priority
        )
    except (PhotoError, WatchlistError) as exc:
        raise HTTPException(422, str(exc)) from None
    return WatchEntryOut.of(entry, datetime.now(UTC))
