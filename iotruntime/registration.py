"""What a provisioned box tells the operations center about itself: its identity, the
kind of box it is, where it stands, and the credential it signs in to the broker with.

`edge-agent provision` writes this bundle on site; `collector devices import` reads it
into the device registry, from which alerts take a pole's name and coordinates and
`collector broker-config` makes the broker's passwords and ACL. It is a file carried by
hand (often with no network at the pole), so it is loaded and checked like a config: a
mistake names the file and the key.

A bundle is also what an attacker would forge to get a credential onto the broker, so the
checks here hold whoever wrote it: a box signs in as its own device id, never as a name the
operations center uses, and a certificate's fingerprint is the certificate's.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from iotruntime.broker_access import RESERVED_USERNAMES
from iotruntime.configfile import StrictModel
from iotruntime.i18n import _
from iotwire.messages import DeviceId


class BoxKind(StrEnum):
    AIR = "air"
    DOMESTIC_WATER = "domestic_water"
    WASTEWATER = "wastewater"
    SEAWATER = "seawater"
    NOISE = "noise"
    CAMERA_POLE = "camera_pole"
    WIFI_AP = "wifi_ap"

    @property
    def sends_plates(self) -> bool:
        """Whether boxes of this kind read licence plates, and so may publish them."""
        return self is BoxKind.CAMERA_POLE


class Location(StrictModel):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


BoxName = Annotated[str, Field(min_length=1, max_length=128)]


class Credential(StrictModel):
    """How the box proves itself to the broker: a password, carried here only as its
    Mosquitto password-file entry, or a client certificate signed by the device CA, whose
    common name is the username. The certificate itself (public) travels with its
    fingerprint, so the operations center can check who signed it and revoke it by
    serial number; bundles from before it travelled carry the fingerprint alone."""

    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    password_entry: (
        Annotated[str, Field(pattern=r"^[^:\s]+:\$7\$\d+\$[^$\s]+\$[^$\s]+$")] | None
    ) = None
    certificate_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    certificate: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.password_entry is None) == (self.certificate_sha256 is None):
            raise ValueError(
                _("a credential is a password_entry or a certificate_sha256, one of them")
            )
        if self.password_entry and not self.password_entry.startswith(f"{self.username}:"):
            raise ValueError(_("password_entry is for another username"))
        if self.certificate is not None:
            self._check_certificate(self.certificate.encode())
        return self

    def _check_certificate(self, pem: bytes) -> None:
        # Imported here: `cryptography` is a large import, and the agent, which loads this
        # module for `BoxKind`, never validates a credential while it runs.
        from iotruntime.certificates import (
            certificate_sha256,
            common_name,
            subject_is_only_common_name,
        )

        try:
            fingerprint = certificate_sha256(pem)
        except ValueError:
            raise ValueError(_("certificate is not a PEM certificate")) from None
        if fingerprint != self.certificate_sha256:
            raise ValueError(_("certificate_sha256 is not the fingerprint of certificate"))
        if not subject_is_only_common_name(pem) or common_name(pem) != self.username:
            raise ValueError(
                _("certificate's subject must be CN={username} alone").format(
                    username=self.username
                )
            )


class Registration(StrictModel):
    v: Literal[1] = 1
    device: DeviceId
    site: DeviceId
    kind: BoxKind
    name: BoxName
    location: Location | None = None
    credential: Credential | None = None

    @field_validator("device")
    @classmethod
    def _not_reserved(cls, device: str) -> str:
        if device in RESERVED_USERNAMES:
            raise ValueError(_("a name the operations center uses on the broker, not a box's"))
        return device

    @field_validator("credential")
    @classmethod
    def _signs_in_as_itself(
        cls, credential: Credential | None, info: ValidationInfo
    ) -> Credential | None:
        device = info.data.get("device")
        if credential is not None and device is not None and credential.username != device:
            raise ValueError(
                _(
                    "username {username} is not the box's device id {device}:"
                    " a box signs in to the broker as itself"
                ).format(username=repr(credential.username), device=repr(device))
            )
        return credential
