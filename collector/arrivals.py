"""A message as it comes off the wire, and the checks that make it a message: the committer
(collector/ingest/) and the plate intake (collector/police/) both start from here, so they
agree on what is valid without one importing the other."""

from iotwire.codec import DecodeError, decode
from iotwire.messages import MODEL_FOR_CHANNEL, Message
from iotwire.topics import TopicError, parse_topic

# A message as it came off the wire: topic, payload, and whether it was drained from the
# spool, which makes it backlog as much as an agent's mark in the payload does
# (iotwire/backlog.py).
Arrival = tuple[str, bytes, bool]


class InvalidMessage(ValueError):
    """A message no store may take; `reason` is the counter it is dropped under."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def validated(topic_text: str, payload: bytes, topic_prefix: str) -> tuple[str, Message]:
    """The site and the message, from an arrival that passes every check on the wire:
    the committer and the plate intake must agree on what is a message."""
    try:
        topic = parse_topic(topic_text, topic_prefix)
    except TopicError as exc:
        raise InvalidMessage("bad_topic", str(exc)) from None
    try:
        message = decode(payload, MODEL_FOR_CHANNEL[topic.channel])
    except DecodeError as exc:
        raise InvalidMessage(exc.reason.value, str(exc)) from None
    if message.device != topic.device:
        raise InvalidMessage(
            "device_mismatch", f"payload device {message.device!r} on {topic.device}'s topic"
        )
    return topic.site, message
