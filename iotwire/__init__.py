"""The contract between edge agents and the collector.

Both sides import this package and nothing else to agree on topics, message shapes and
encoding, so a change to the wire is a change in one place that both sides see.
"""

from iotwire.codec import MAX_PAYLOAD_BYTES, DecodeError, DecodeReason, decode, decode_any, encode
from iotwire.messages import (
    SCHEMA_VERSION,
    Command,
    CommandAck,
    Health,
    Message,
    PlateRead,
    Quality,
    Reading,
    Sample,
    Status,
    Telemetry,
)
from iotwire.topics import Channel, Topic, TopicError, parse_topic, subscription, topic_for

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "Channel",
    "Command",
    "CommandAck",
    "DecodeError",
    "DecodeReason",
    "Health",
    "Message",
    "PlateRead",
    "Quality",
    "Reading",
    "Sample",
    "Status",
    "Telemetry",
    "Topic",
    "TopicError",
    "decode",
    "decode_any",
    "encode",
    "parse_topic",
    "subscription",
    "topic_for",
]
