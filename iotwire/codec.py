"""JSON encoding of wire messages, and the one error type for untrusted bytes.

Decoding is the boundary with the outside world: whatever arrives, the caller gets either
a validated message or a DecodeError that says what is wrong, in a form that can be
counted by reason. Nothing else escapes.
"""

from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from iotwire.messages import Message, WireModel

MAX_PAYLOAD_BYTES = 256 * 1024

M = TypeVar("M", bound=WireModel)

_ANY_MESSAGE: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="kind")])


class DecodeReason(StrEnum):
    TOO_LARGE = "too_large"
    BAD_JSON = "bad_json"
    WRONG_VERSION = "wrong_version"
    WRONG_KIND = "wrong_kind"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"


class DecodeError(ValueError):
    """Untrusted bytes that are not a valid message; `reason` is stable for counting."""

    def __init__(self, reason: DecodeReason, detail: str, field: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        where = f" at {field}" if field else ""
        super().__init__(f"{reason.value}{where}: {detail}")


def encode(message: WireModel) -> bytes:
    """Every field, nulls included: a fault reading's `"value": null` is part of its meaning."""
    return message.model_dump_json().encode()


def decode(data: bytes, expect: type[M]) -> M:
    """Decode bytes that must be a message of type `expect`."""
    _check_size(data)
    try:
        message = expect.model_validate_json(data)
    except ValidationError as exc:
        raise _classify(exc) from None
    return _require_envelope(message)


def decode_any(data: bytes) -> Message:
    """Decode bytes as whichever message kind they say they are."""
    _check_size(data)
    try:
        message = _ANY_MESSAGE.validate_json(data)
    except ValidationError as exc:
        raise _classify(exc, tagged=True) from None
    return _require_envelope(message)


def _require_envelope(message: M) -> M:
    """Version and kind default in code, but a payload must state them to be trusted."""
    for name in ("v", "kind"):
        if name in type(message).model_fields and name not in message.model_fields_set:
            raise DecodeError(DecodeReason.MISSING_FIELD, "Field required", name)
    return message


def _check_size(data: bytes) -> None:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError(
            DecodeReason.TOO_LARGE, f"{len(data)} bytes, the limit is {MAX_PAYLOAD_BYTES}"
        )


def field_path(loc: tuple[int | str, ...]) -> str:
    """`samples[0].readings[2].value` from pydantic's location tuple."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _reason_for(error: ErrorDetails, loc: tuple[int | str, ...]) -> DecodeReason:
    kind = error["type"]
    if kind in ("json_invalid", "json_type"):
        return DecodeReason.BAD_JSON
    if kind in ("missing", "union_tag_not_found"):
        return DecodeReason.MISSING_FIELD
    if kind == "extra_forbidden":
        return DecodeReason.UNKNOWN_FIELD
    if loc == ("v",):
        return DecodeReason.WRONG_VERSION
    if kind == "union_tag_invalid" or loc == ("kind",):
        return DecodeReason.WRONG_KIND
    if kind.endswith(("_type", "_parsing")) or kind == "is_instance_of":
        return DecodeReason.WRONG_TYPE
    return DecodeReason.INVALID_VALUE


def _classify(exc: ValidationError, *, tagged: bool = False) -> DecodeError:
    # In a union tagged by `kind`, pydantic puts the tag first in the location; drop it.
    found = [
        (e, e["loc"][1:] if tagged and e["loc"] else e["loc"])
        for e in exc.errors(include_url=False, include_input=False)
    ]
    reasons = [_reason_for(error, loc) for error, loc in found]
    # A message of the wrong version or kind fails on many fields; name the cause, not the noise.
    chosen = 0
    for priority in (DecodeReason.BAD_JSON, DecodeReason.WRONG_VERSION, DecodeReason.WRONG_KIND):
        if priority in reasons:
            chosen = reasons.index(priority)
            break
    (error, loc), reason = found[chosen], reasons[chosen]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return DecodeError(reason, error["msg"] + more, field_path(loc))
