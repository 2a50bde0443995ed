"""A software release offered by the collector to one box, signed, and what became of it.

The `update_software` command carries a signed `SoftwareUpdate` exactly as `push_config`
carries a ConfigPush (iotwire/config_push.py: `document` and `signature`, Ed25519, the
collector's key; issued after the box's last update, a nonce to ask again about the same
one). The release itself is not on the wire: it is a bundle of wheels
(scripts/build_bundle.py) the box fetches from `url`, and the signed `sha256` is what
makes any server, the collector's or a local mirror, good enough to fetch it from: a
bundle with another digest is refused before anything is installed.

The answer is a `cmd_ack` whose detail starts with the outcome and a colon, the outcomes
of a push (`PushOutcome`, `outcome_of`): `applied: ...` (the box runs the release and
reached the broker on it), `refused: ...` (nothing changed: the signature, the digest, the
install failed), `rolled_back: ...` (the release was tried, did not come up healthy, and
the box runs its previous one again).
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from iotwire.messages import DeviceId, ShortText, Timestamp, WireModel

MIN_HEALTH_S = 10.0
MAX_HEALTH_S = 1800.0
VERSION_PATTERN = r"^[0-9][0-9A-Za-z.+!-]{0,63}$"


class SoftwareUpdate(WireModel):
    """What the collector signs. `health_s` is how long the release has, started on the
    box, to reach the broker; the operator who knows the box's link sets it, signed, so
    nobody else can shorten it to make a good release roll back."""

    v: Literal[1] = 1
    kind: Literal["software_update"] = "software_update"
    device: DeviceId
    issued: Timestamp
    nonce: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    by: ShortText
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=1024)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    health_s: Annotated[float, Field(ge=MIN_HEALTH_S, le=MAX_HEALTH_S)] = 60.0
