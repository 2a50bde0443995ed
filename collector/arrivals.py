"""A message as it comes off the wire, and the checks that make it a message: the committer
(collector/ingest/) and the plate intake (collector/police/) both start from here, so they
agree on what is valid without one importing the other."""

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from iotwire.codec import DecodeError, DecodeReason, decode
from iotwire.messages import MAX_SEQ, MODEL_FOR_CHANNEL, Batch, Message
from iotwire.topics import Channel, TopicError, parse_topic

# A message as it came off the wire: topic, payload, and whether it was drained from the
# spool, which makes it backlog as much as an agent's mark in the payload does
# (iotwire/backlog.py).
Arrival = tuple[str, bytes, bool]

# A box's stream as its confirmations name it: site, device and epoch.
StreamKey = tuple[str, str, str]
STREAMED = frozenset((Channel.TELEMETRY, Channel.PLATE, Channel.HEALTH, Channel.BATCH))

# The most of a topic that names the sender of a message whose topic names no device.
MAX_SOURCE_CHARS = 96
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidMessage(ValueError):
    """A message no store may take; `reason` is the counter it is dropped under, and
    `source` who sent it: the device its topic names or, when the topic names none, the
    topic itself, printable and cut short. The broker lets each device publish on its own
    topics alone, so the device in the topic is the box that sent the message, whatever
    its payload claims."""

    def __init__(self, reason: str, detail: str, source: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.source = source


def _shown(topic_text: str) -> str:
    return _CONTROL.sub("?", topic_text[:MAX_SOURCE_CHARS])


def validated(topic_text: str, payload: bytes, topic_prefix: str) -> tuple[str, Message]:
    """The site and the message, from an arrival that passes every check on the wire:
    the committer and the plate intake must agree on what is a message."""
    try:
        topic = parse_topic(topic_text, topic_prefix)
    except TopicError as exc:
        raise InvalidMessage("bad_topic", str(exc), _shown(topic_text)) from None
    try:
        message = decode(payload, MODEL_FOR_CHANNEL[topic.channel])
    except DecodeError as exc:
        raise InvalidMessage(exc.reason.value, str(exc), topic.device) from None
    inner = message.messages if isinstance(message, Batch) else ()
    for claimed in (message.device, *(m.device for m in inner)):
        if claimed != topic.device:
            raise InvalidMessage(
                "device_mismatch",
                f"payload device {claimed!r} on {topic.device}'s topic",
                topic.device,
            )
    for m in inner:
        if "v" not in m.model_fields_set:  # as the codec requires of a message alone
            raise InvalidMessage(
                DecodeReason.MISSING_FIELD.value,
                f"a message in the batch (seq {m.seq}) does not state its version",
                topic.device,
            )
    return topic.site, message


class _Position(BaseModel):
    """A streamed message as far as its confirmation needs it: pydantic reads the JSON
    and skips everything else without building it, four times faster than `json.loads`
    on a batch, which the ingest session does for every message it spools."""

    model_config = ConfigDict(extra="ignore")
    epoch: Any = None
    seq: Any = None


class _BatchPositions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    messages: list[_Position]


def stream_positions(
    topic_text: str, payload: bytes, topic_prefix: str
) -> list[tuple[StreamKey, int]]:
    """Where the streamed messages of an arrival (one, or a batch's) say they sit in
    their box's stream, read without validating the rest: what the collector confirms
    for an arrival it spools undecoded. Messages that name no epoch (an agent that does
    not wait for confirmations), or cannot be read that far, are left out; a message
    confirmed here and found invalid later is counted as invalid then, as it would have
    been now."""
    try:
        topic = parse_topic(topic_text, topic_prefix)
    except TopicError:
        return []
    if topic.channel not in STREAMED:
        return []
    batch = topic.channel is Channel.BATCH
    try:
        pairs = [
            (m.epoch, m.seq)
            for m in (
                _BatchPositions.model_validate_json(payload).messages
                if batch
                else [_Position.model_validate_json(payload)]
            )
        ]
    except ValidationError:  # not that shape: read it whole, and take what can be read
        pairs = _pairs_read_whole(payload, batch)
    return [
        ((topic.site, topic.device, epoch), seq)
        for epoch, seq in pairs
        if isinstance(epoch, str) and type(seq) is int and 0 <= seq <= MAX_SEQ
    ]


def _pairs_read_whole(payload: bytes, batch: bool) -> list[tuple[Any, Any]]:
    try:
        body = json.loads(payload)
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    members = body.get("messages") if batch else [body]
    if not isinstance(members, list):
        return []
    return [(m.get("epoch"), m.get("seq")) for m in members if isinstance(m, dict)]
