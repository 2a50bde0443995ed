"""How a message says it waited out an outage: `"backlog":true` in its payload.

The payload was committed to the outbox before anyone knew it would wait, so the agent
adds the mark to the committed bytes as it publishes them late; the message models read
it (`backlog` on telemetry, plate and health messages) and never encode it.

The mark is in the payload rather than in an MQTT 5 user property for two reasons. Over
MQTT 3.1.1, which an agent falls back to when its broker has no MQTT 5, a property is lost
and replayed plates would look live. And a subscriber that needs no property can subscribe
over 3.1.1, which costs the collector's receiving process less: paho builds a properties
object for every MQTT 5 message it receives (collector/config.py). Sparkplug B marks
store-and-forward data the same way, in the payload.
"""

_OBJECT_START = b'{"'
_MARKED_START = b'{"backlog":true,"'


def marked(payload: bytes) -> bytes:
    """The payload, as sent after an outage. Payloads are JSON objects with at least the
    envelope's fields (iotwire/codec.py encodes them), so the mark goes in as the first
    member without decoding the rest."""
    if not payload.startswith(_OBJECT_START):
        raise ValueError("a backlog mark goes on an encoded message, a JSON object")
    return _MARKED_START + payload[len(_OBJECT_START) :]
