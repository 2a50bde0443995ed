"""The rows people read, one model per kind, shared by the API (JSON and CSV) and the CLI
(tables and CSV), so a column has one name wherever it appears.

Times are written as Python's ISO 8601 (`2026-11-30T05:00:00+00:00`), the form the API
answers with, rather than pydantic's `Z` form.
"""

from datetime import datetime
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from collector.query import AggregateRow

IsoTime = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str)]
M = TypeVar("M", bound=BaseModel)


def row_of(model: type[M], source: object, **given: object) -> M:
    """A `model` whose fields are read off `source` by name, except those `given`. A field
    shown under a shorter name than its source's says which in its `validation_alias`."""
    fields = {}
    for name, info in model.model_fields.items():
        read = info.validation_alias if isinstance(info.validation_alias, str) else name
        fields[read] = given.pop(name) if name in given else getattr(source, read)
    return model(**fields, **given)


class ReadingOut(BaseModel):
    ts: IsoTime
    site: str
    device: str
    sensor: str
    parameter: str
    value: float | None
    unit: str
    quality: str


class AggregateOut(BaseModel):
    """One window of one series; each asked-for function (`mean`, `max`, ...) is a further
    column named after it."""

    model_config = ConfigDict(extra="allow")

    window_start: IsoTime
    site: str
    device: str
    sensor: str
    parameter: str
    unit: str

    @classmethod
    def of(cls, row: AggregateRow, functions: tuple[str, ...]) -> "AggregateOut":
        return row_of(cls, row, **dict(zip(functions, row.values, strict=True)))


class DeviceOut(BaseModel):
    """A device with its state as of now, which the stored state only starts from."""

    device: str
    site: str
    state: str
    version: str
    last_seen: IsoTime | None
    messages: int
    duplicates: int
    gaps: int
    resets: int = Field(
        validation_alias="state_resets",
        description="times the box started numbering again under a new epoch after its"
        " first, having lost its state (a new SD card, a reinstall)",
    )


def columns(model: type[BaseModel]) -> tuple[str, ...]:
    """The model's column names, in order: the header of a table or CSV of its rows."""
    return tuple(model.model_fields)
