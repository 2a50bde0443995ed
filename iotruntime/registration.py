"""What a provisioned box tells the operations center about itself: its identity, the
kind of box it is, and where it stands.

`edge-agent provision` writes this bundle on site; `collector devices import` reads it
into the device registry, from which alerts take a pole's name and coordinates. It is a
file carried by hand (often with no network at the pole), so it is loaded and checked
like a config: a mistake names the file and the key.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from iotruntime.configfile import StrictModel
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


class Credential(StrictModel):
    """How the box proves itself to the broker: a password, carried here only as its
    Mosquitto password-file entry, or a client certificate signed by the site CA, whose
    common name is the username."""

    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    password_entry: (
        Annotated[str, Field(pattern=r"^[^:\s]+:\$7\$\d+\$[^$\s]+\$[^$\s]+$")] | None
    ) = None
    certificate_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.password_entry is None) == (self.certificate_sha256 is None):
            raise ValueError(
                "a credential is a password_entry or a certificate_sha256, one of them"
            )
        if self.password_entry and not self.password_entry.startswith(f"{self.username}:"):
            raise ValueError("password_entry is for another username")
        return self


class Registration(StrictModel):
    v: Literal[1] = 1
    device: DeviceId
    site: DeviceId
    kind: BoxKind
    name: BoxName
    location: Location | None = None
    credential: Credential | None = None
