"""A config pushed by the collector to one box, signed, and what became of it.

The `push_config` command carries two arguments: `document`, the JSON of a ConfigPush,
and `signature`, the Ed25519 signature of exactly those bytes, base64. The box verifies
the bytes it received, not a re-encoding, so neither side depends on JSON being written
the same way twice.

Why a signature when the broker's ACL already lets only the collectors write a box's
`cmd` topics: a config decides where the box sends its data and with which credential, so
whoever holds a collector's broker password, or the broker host, must not be able to
re-point the fleet. The collector's signing key stays on the operations center; the boxes
hold only its public key (`collector_key` in their config).

Why the document names the device and carries `issued` and a nonce: a signed push for one
box is no use on another, and an old push replayed (to roll a box back to a config with a
credential since revoked) is refused, because a box acts on a push only if it was issued
after the last push it took. The nonce tells a push from a different one issued in the same
instant, and lets the collector ask again about the same push (the box then repeats its
answer instead of acting twice).

The answer to a push is a `cmd_ack` with the command's id whose detail starts with the
outcome and a colon (`applied: ...`, `refused: ...`, `rolled_back: ...`): `outcome_of`
reads it back.
"""

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, StringConstraints, ValidationError

from iotwire.messages import (
    MAX_CONFIG_CHARS,
    CommandAck,
    DeviceId,
    ShortText,
    Timestamp,
    WireModel,
)

DOCUMENT_ARG = "document"
SIGNATURE_ARG = "signature"
MIN_ROLLBACK_S = 5.0
MAX_ROLLBACK_S = 3600.0


class ConfigPush(WireModel):
    """What the collector signs. `rollback_after_s` travels signed with the config: how
    long the box, restarted on it, may take to reach the broker before it goes back to its
    previous config. The operator who pushes knows the box's link; nobody else may shorten
    it to make a good config roll back."""

    v: Literal[1] = 1
    kind: Literal["config_push"] = "config_push"
    device: DeviceId
    issued: Timestamp
    nonce: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    by: ShortText
    rollback_after_s: Annotated[float, Field(ge=MIN_ROLLBACK_S, le=MAX_ROLLBACK_S)] = 60.0
    config: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONFIG_CHARS)]


class PushOutcome(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"


class PushError(ValueError):
    """A push that is not one: unsigned, badly signed, or not a ConfigPush."""


def signed_args(push: WireModel, key: Ed25519PrivateKey) -> dict[str, str | int | float | bool]:
    """The arguments of a signed command (`push_config`, `update_software`)."""
    document = push.model_dump_json().encode()
    return {
        DOCUMENT_ARG: document.decode(),
        SIGNATURE_ARG: base64.b64encode(key.sign(document)).decode(),
    }


def public_key(pem: bytes) -> Ed25519PublicKey:
    """The collector's public key from its PEM file; ValueError if it is not Ed25519."""
    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


Signed = TypeVar("Signed", bound=WireModel)


def verified_push(args: dict[str, str | int | float | bool], key: Ed25519PublicKey) -> ConfigPush:
    """The push in a command's arguments, if `key` signed exactly these bytes."""
    return verified_document(args, key, ConfigPush)


def verified_document(
    args: dict[str, str | int | float | bool], key: Ed25519PublicKey, model: type[Signed]
) -> Signed:
    """The `model` document in a signed command's arguments, if `key` signed exactly these
    bytes; PushError otherwise."""
    document, signature = args.get(DOCUMENT_ARG), args.get(SIGNATURE_ARG)
    if not isinstance(document, str) or not isinstance(signature, str):
        raise PushError("unsigned: the push needs a document and its signature")
    try:
        key.verify(base64.b64decode(signature, validate=True), document.encode())
    except (binascii.Error, InvalidSignature):
        raise PushError("the signature does not verify with this box's collector_key") from None
    try:
        return model.model_validate_json(document)
    except ValidationError as exc:
        raise PushError(
            f"signed, but not a {model.__name__}: {exc.error_count()} error(s)"
        ) from None


def outcome_detail(outcome: PushOutcome, reason: str) -> str:
    return f"{outcome.value}: {reason}"


def outcome_of(ack: CommandAck) -> PushOutcome | None:
    """What a box's answer to a push says became of it; None for an answer that is not
    about a push (an agent failing on the command, say)."""
    word, colon, _ = ack.detail.partition(":")
    if not colon:
        return None
    try:
        return PushOutcome(word)
    except ValueError:
        return None
