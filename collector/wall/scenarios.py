"""The wall's `wall` config section: which panels go on which screen of the video wall.

A scenario is a grid of screens (the center's wall is 4 by 3 screens of 1920x1080) and,
screen by screen, the panel it shows. The wall's URL names the scenario, so the duty
officer switches from the everyday layout to an incident layout by opening another URL,
with no restart; one screen can also open a single panel's URL on its own.

A screen's language is the URL's `?lang=` first, then the scenario's `language`, then the
wall's, then the browser's Accept-Language: the center can put its screens in Vietnamese
for good while a visitor's laptop still opens one in English.
"""

import re
from typing import Annotated, Literal, Self, get_args

from pydantic import Field, model_validator

from iotruntime.configfile import StrictModel

Panel = Literal[
    "map",
    "fleet",
    "alarms",
    "police",
    "air",
    "water",
    "wastewater",
    "seawater",
    "noise",
    "wifi",
    "series",
]
PANELS: tuple[str, ...] = get_args(Panel)
# The languages a screen speaks (iotruntime.i18n.LANGUAGES); a config names one of them.
Language = Literal["en", "vi"]
_SIZE = re.compile(r"^([1-9][0-9]?)x([1-9][0-9]?)$")
_PIXELS = re.compile(r"^([1-9][0-9]{2,4})x([1-9][0-9]{2,4})$")


class Scenario(StrictModel):
    grid: Annotated[str, Field(pattern=_SIZE.pattern, description="screens across x down")] = "4x3"
    screen: Annotated[str, Field(pattern=_PIXELS.pattern, description="pixels of one screen")] = (
        "1920x1080"
    )
    screens: Annotated[list[Panel], Field(min_length=1)] = Field(
        description="the panel of each screen, row by row from the top left"
    )
    language: Language | None = Field(
        default=None, description="the language of this scenario's screens (en or vi)"
    )

    @property
    def size(self) -> tuple[int, int]:
        across, down = self.grid.split("x")
        return int(across), int(down)

    @model_validator(mode="after")
    def _fits(self) -> Self:
        across, down = self.size
        if len(self.screens) > across * down:
            raise ValueError(
                f"{len(self.screens)} screens do not fit a {self.grid} grid"
                f" ({across * down} screens)"
            )
        return self


def _default_scenarios() -> dict[str, Scenario]:
    return {
        "center": Scenario(
            screens=[
                "map",
                "fleet",
                "alarms",
                "police",
                "air",
                "water",
                "wastewater",
                "seawater",
                "noise",
                "wifi",
                "series",
                "map",
            ]
        ),
        "incident": Scenario(grid="2x2", screens=["map", "police", "alarms", "fleet"]),
        "environment": Scenario(
            grid="3x2", screens=["air", "water", "wastewater", "seawater", "noise", "alarms"]
        ),
    }


class WallSettings(StrictModel):
    """The wall served at /wall; map tiles are optional (the island's outline ships with
    the collector), from a tile server the center runs, as a Leaflet URL template."""

    scenarios: dict[Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")], Scenario] = Field(
        default_factory=_default_scenarios
    )
    default: str = "center"
    tiles_url: str | None = Field(
        default=None, description="e.g. https://tiles.example.vn/{z}/{x}/{y}.png"
    )
    tiles_attribution: str = ""
    language: Language | None = Field(
        default=None,
        description="the language of every screen whose scenario names none (en or vi)",
    )

    def language_of(self, scenario: str | None) -> str | None:
        """The configured language of a scenario's screens, or of a single panel's."""
        chosen = self.scenarios.get(scenario) if scenario is not None else None
        if chosen is not None and chosen.language is not None:
            return chosen.language
        return self.language

    @model_validator(mode="after")
    def _default_named(self) -> Self:
        if self.default not in self.scenarios:
            raise ValueError(
                f"default: no scenario {self.default!r} (scenarios: {', '.join(self.scenarios)})"
            )
        return self
