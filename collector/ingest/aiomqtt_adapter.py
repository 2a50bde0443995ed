"""The three places the ingest reaches past aiomqtt's public API, kept in one module.

aiomqtt has no public switch for application acknowledgements (aiomqtt#345), and its
message iterator costs two event-loop turns a message. paho, underneath, has the switch,
and the queue aiomqtt fills can be read without waiting. Both rest on private attributes
(`Client._client`, the paho client; `Client._queue`, the incoming queue), so the
dependency is pinned below aiomqtt 3 and `tests/collector/ingest/test_aiomqtt_adapter.py`
fails when a release moves them.
"""

import sys

import aiomqtt


def manual_acks(client: aiomqtt.Client) -> aiomqtt.Client:
    """Turn off paho's acknowledgement on receipt. It must be off before connecting: a
    persistent session's unacknowledged messages are redelivered right after CONNACK."""
    client._client.manual_ack_set(True)
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Acknowledge one message to the broker, after its commit."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


def queued(
    client: aiomqtt.Client, limit: int, max_bytes: int = sys.maxsize
) -> list[aiomqtt.Message]:
    """Up to `limit` messages that have already arrived, taken at once, without the
    iterator's task per message; no more once their payloads reach `max_bytes`."""
    queue = client._queue
    taken: list[aiomqtt.Message] = []
    size = 0
    while len(taken) < limit and size < max_bytes and not queue.empty():
        message = queue.get_nowait()
        taken.append(message)
        size += payload_size(message)
    return taken


def payload_size(message: aiomqtt.Message) -> int:
    payload = message.payload
    return len(payload) if isinstance(payload, bytes | bytearray) else 0
