"""What a provisioned box tells the operations center about itself: its identity, the
kind of box it is, and where it stands.

`edge-agent provision` writes this bundle on site; `collector devices import` reads it
into the device registry, from which alerts take a pole's name and coordinates. It is a
file carried by hand (often with no network at the pole), so it is loaded and checked
like a config: a mistake names the file and the key.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from iotwire.configfile import StrictModel
from iotwire.messages import DeviceId


class BoxKind(StrEnum):
    AIR = "air"
    DOMESTIC_WATER = "domestic_water"
    WASTEWATER = "wastewater"
    SEAWATER = "seawater"
    NOISE = "noise"
    CAMERA_POLE = "camera_pole"
    WIFI_AP = "wifi_ap"


class Location(StrictModel):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


BoxName = Annotated[str, Field(min_length=1, max_length=128)]


class Registration(StrictModel):
    v: Literal[1] = 1
    device: DeviceId
    site: DeviceId
    kind: BoxKind
    name: BoxName
    location: Location | None = None
