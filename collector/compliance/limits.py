"""The limits a reading is judged by, chosen by station kind, parameter and day.

The values live in `limits.yaml`, each with its regulation, clause, averaging period and
the days it applies; this module loads and checks that file and answers which limit was in
force for a given day. Regulations were replaced in 2025, so "the limit for PM2.5" is a
question about a date as much as about a parameter, and, where the replacing circular lets
facilities approved before it keep the old rule for a while, about the station too.

The built-in table holds only confirmed values. The environmental officer completes it
with a site limits file (the collector config's `site_limits`): the same schema, merged
over the built-in table, so values found later (QCVN 14:2025, a permit's own limits) need
no release. A site entry replaces the built-in one with the same kind, parameter,
regulation, averaging, column, zone and start day, and adds to the table otherwise; a site
regulation with a built-in id replaces that regulation. Each site limit must say where its
figure comes from and from which day it applies, since nobody reviewed it before it judges
a report.
"""

from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, PrivateAttr, model_validator

from collector.config import ZONES, CollectorConfig, StationKind, StationSettings, StationZone
from collector.i18n import reports
from iotruntime.configfile import ConfigError, StrictModel, load_model

# Mistakes in a limits file are shown to the officer who wrote it, in the command's language.
_ = reports.gettext
Averaging = Literal["sample", "1h", "8h", "24h", "1y", "day", "night"]
LimitKey = tuple[str, str, str, str, str | None, str | None, date | None]


def _in_order(first: date | None, last: date | None, what: str) -> None:
    if first is not None and last is not None and last < first:
        raise ValueError(
            _("{what} ends ({last}) before it starts ({first})").format(
                what=what, last=last, first=first
            )
        )


class Regulation(StrictModel):
    """A regulation and the days it applies. `existing_until` carries a transition rule:
    facilities approved before the successor took effect keep applying this regulation
    until that day, though it ends for everyone else on `applies_until`."""

    id: str
    title: str
    applies_from: date | None = None
    applies_until: date | None = None
    existing_until: date | None = Field(
        default=None, description="facilities approved before the successor keep it until then"
    )
    transition: str = Field(default="", description="the rule that grants existing_until")
    conditions: str = ""
    source: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _dates(self) -> Self:
        _in_order(self.applies_from, self.applies_until, _("the regulation"))
        if self.existing_until is not None:
            if self.applies_until is None or self.existing_until <= self.applies_until:
                raise ValueError(_("existing_until extends applies_until: it must come after it"))
            if not self.transition:
                raise ValueError(_("existing_until needs `transition`, the rule that grants it"))
        return self

    def ends(self, existing_facility: bool) -> date | None:
        """The last day this regulation applies to a facility of that age."""
        if existing_facility and self.existing_until is not None:
            return self.existing_until
        return self.applies_until


class Limit(StrictModel):
    kind: StationKind
    parameter: str
    regulation: str
    clause: str
    averaging: Averaging
    unit: str
    min: float | None = None
    max: float | None = None
    applies_from: date | None = None
    applies_until: date | None = None
    column: Literal["A", "B"] | None = Field(default=None, description="wastewater column")
    zone: StationZone | None = Field(default=None, description="noise or seawater zone")
    k_factor: bool = Field(default=False, description="the value is multiplied by K")
    note: str = ""
    source: str = Field(default="", description="where the figure comes from, if not the rule")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError(_("a limit needs min, max or both"))
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(
                _("max ({max}) is below min ({min})").format(max=self.max, min=self.min)
            )
        _in_order(self.applies_from, self.applies_until, _("the limit"))
        if self.column is not None and self.kind != "wastewater":
            raise ValueError(_("column (A or B) is for wastewater limits only"))
        zones = ZONES.get(self.kind, ())
        if self.zone is not None and self.zone not in zones:
            allowed = _("one of {zones}").format(zones=", ".join(zones)) if zones else _("not set")
            raise ValueError(
                _("zone of a {kind} limit is {allowed}").format(kind=self.kind, allowed=allowed)
            )
        return self

    @property
    def key(self) -> LimitKey:
        """What a site entry must repeat to replace this limit rather than add one."""
        return (
            self.kind,
            self.parameter,
            self.regulation,
            self.averaging,
            self.column,
            self.zone,
            self.applies_from,
        )

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
    # Which file each site limit came from, by key; a limit not here is built in.
    _site_files: dict[LimitKey, Path] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _known_regulations(self) -> Self:
        known = {r.id for r in self.regulations}
        unknown = sorted({limit.regulation for limit in self.limits} - known)
        if unknown:
            raise ValueError(
                _("limits cite regulations not listed: {ids}").format(ids=", ".join(unknown))
            )
        first: dict[LimitKey, int] = {}
        for i, limit in enumerate(self.limits):
            if limit.key in first:
                raise ValueError(
                    _("limits[{index}] repeats limits[{first}]").format(
                        index=i, first=first[limit.key]
                    )
                )
            first[limit.key] = i
        return self

    def regulation(self, limit: Limit) -> Regulation:
        return next(r for r in self.regulations if r.id == limit.regulation)

    def file_of(self, limit: Limit) -> Path | None:
        """The site limits file `limit` came from; None when it is built in."""
        return self._site_files.get(limit.key)

    def in_force(
        self,
        kind: str,
        parameter: str | None,
        day: date,
        *,
        column: str | None = None,
        zone: str | None = None,
        existing_facility: bool = True,
    ) -> list[Limit]:
        """The limits for `kind` and `parameter` (every parameter when None) on `day`, from
        the regulation in force then for a facility of that age, narrowed to a wastewater
        column or a zone when given (a limit without one applies to every column or zone).
        Facilities are taken as existing unless told otherwise, as the island's plants are."""
        regulations = {r.id: r for r in self.regulations}
        found = []
        for limit in self.limits:
            regulation = regulations[limit.regulation]
            starts = limit.applies_from or regulation.applies_from
            ends = limit.applies_until or regulation.ends(existing_facility)
            if (
                limit.kind == kind
                and parameter in (None, limit.parameter)
                and (starts is None or starts <= day)
                and (ends is None or day <= ends)
                and (column is None or limit.column in (None, column))
                and (zone is None or limit.zone in (None, zone))
            ):
                found.append(limit)
        return found

    def for_station(self, station: StationSettings, parameter: str, day: date) -> list[Limit]:
        """The limits that judge `parameter` of this station on `day`."""
        return self.in_force(
            station.kind,
            parameter,
            day,
            column=station.column,
            zone=station.zone,
            existing_facility=station.existing_facility,
        )


class SiteLimits(StrictModel):
    """A site limits file: the built-in schema, every part optional, checked against the
    built-in table it completes."""

    regulations: list[Regulation] = Field(default_factory=list)
    limits: list[Limit] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


@cache
def builtin_limits() -> LimitTable:
    with resources.as_file(resources.files(__package__) / "limits.yaml") as path:
        return load_limits(Path(path))


def load_limits(path: Path) -> LimitTable:
    return load_model(path, LimitTable)


def _site_problems(site: SiteLimits, regulations: dict[str, Regulation]) -> list[tuple[str, str]]:
    """What a site file must say beyond the schema: a known regulation, a start day and a
    source for every limit, and no limit twice."""
    problems = []
    first: dict[LimitKey, int] = {}
    for i, limit in enumerate(site.limits):
        where = f"limits[{i}]"
        regulation = regulations.get(limit.regulation)
        if regulation is None:
            problems.append(
                (
                    f"{where}.regulation",
                    _(
                        "no regulation {regulation} here or in the built-in table: "
                        "list it under regulations"
                    ).format(regulation=repr(limit.regulation)),
                )
            )
        elif limit.applies_from is None and regulation.applies_from is None:
            problems.append(
                (
                    f"{where}.applies_from",
                    _(
                        "the day this limit applies from is not known: set applies_from here "
                        "or on regulation {regulation}"
                    ).format(regulation=repr(limit.regulation)),
                )
            )
        if not limit.source:
            problems.append((f"{where}.source", _("say where this figure comes from")))
        if limit.key in first:
            problems.append((where, _("repeats limits[{first}]").format(first=first[limit.key])))
        first.setdefault(limit.key, i)
    return problems


def load_site_limits(path: Path) -> LimitTable:
    """The built-in table completed by the site limits file at `path`; a mistake in it is
    a ConfigError naming the file and the key."""
    base = builtin_limits()
    site = load_model(path, SiteLimits)
    regulations = {r.id: r for r in base.regulations} | {r.id: r for r in site.regulations}
    problems = _site_problems(site, regulations)
    if problems:
        raise ConfigError(path, problems)
    limits = {limit.key: limit for limit in base.limits + site.limits}
    table = LimitTable(
        regulations=list(regulations.values()),
        limits=list(limits.values()),
        missing=base.missing + site.missing,
    )
    table._site_files = {limit.key: path for limit in site.limits}
    return table


def configured_limits(config: CollectorConfig) -> LimitTable:
    """The table a report is judged by: the built-in one, completed by the site file."""
    if config.site_limits is None:
        return builtin_limits()
    return load_site_limits(config.site_limits)
