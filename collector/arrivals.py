"""A message as it comes off the wire, and the checks that make it a message: the committer
(collector/ingest/) and the plate intake (collector/police/) both start from here, so they
agree on what is valid without one importing the other."""

import re

from iotwire.codec import DecodeError, decode
from iotwire.messages import MODEL_FOR_CHANNEL, Message
from iotwire.topics import TopicError, parse_topic

# A message as it came off the wire: topic, payload, and whether it was drained from the
# spool, which makes it backlog as much as an agent's mark in the payload does
# (iotwire/backlog.py).
Arrival = tuple[str, bytes, bool]

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
    if message.device != topic.device:
        raise InvalidMessage(
            "device_mismatch",
            f"payload device {message.device!r} on {topic.device}'s topic",
            topic.device,
        )
    return topic.site, message
