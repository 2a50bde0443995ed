"""The limits a reading is judged by, chosen by station kind, parameter and day.

The values live in `limits.yaml`, each with its regulation, clause, averaging period and
the days it applies; this module loads and checks that file and answers which limit was in
force for a given day. Regulations were replaced in 2025, so "the limit for PM2.5" is a
question about a date as much as about a parameter.
"""

from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from iotruntime.configfile import StrictModel, load_model

Averaging = Literal["sample", "1h", "8h", "24h", "1y", "day", "night"]


class Regulation(StrictModel):
    id: str
    title: str
    applies_from: date | None = None
    applies_until: date | None = None
    conditions: str = ""
    source: Annotated[str, Field(min_length=1)]


class Limit(StrictModel):
    kind: str
    parameter: str
    regulation: str
    clause: str
    averaging: Averaging
    unit: str
    min: float | None = None
    max: float | None = None
    applies_from: date | None = None
    applies_until: date | None = None
    column: str | None = None
    zone: str | None = None
    k_factor: bool = Field(default=False, description="the value is multiplied by K")
    note: str = ""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("a limit needs min, max or both")
        return self

    def exceeded_by(self, value: float, k: float = 1.0) -> bool:
        """True when `value` lies outside the limit (K scales the upper bound)."""
        factor = k if self.k_factor else 1.0
        return (self.max is not None and value > self.max * factor) or (
            self.min is not None and value < self.min
        )


class LimitTable(StrictModel):
    regulations: list[Regulation]
    limits: list[Limit]
    missing: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_regulations(self) -> Self:
        known = {r.id for r in self.regulations}
        unknown = sorted({limit.regulation for limit in self.limits} - known)
        if unknown:
            raise ValueError(f"limits cite regulations not listed: {', '.join(unknown)}")
        return self

    def in_force(
        self,
        kind: str,
        parameter: str,
        day: date,
        *,
        column: str | None = None,
        zone: str | None = None,
    ) -> list[Limit]:
        """The limits for `kind` and `parameter` on `day`, from the regulation in force then
        (narrowed to a wastewater column or a noise zone when given)."""
        regulations = {r.id: r for r in self.regulations}
        found = []
        for limit in self.limits:
            regulation = regulations[limit.regulation]
            starts = limit.applies_from or regulation.applies_from
            ends = limit.applies_until or regulation.applies_until
            if (
                limit.kind == kind
                and limit.parameter == parameter
                and (starts is None or starts <= day)
                and (ends is None or day <= ends)
                and (column is None or limit.column == column)
                and (zone is None or limit.zone == zone)
            ):
                found.append(limit)
        return found


@cache
def builtin_limits() -> LimitTable:
    with resources.as_file(resources.files(__package__) / "limits.yaml") as path:
        return load_limits(Path(path))


def load_limits(path: Path) -> LimitTable:
    return load_model(path, LimitTable)
