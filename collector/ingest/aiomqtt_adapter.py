"""The three places the ingest reaches past aiomqtt's public API, kept in one module.

aiomqtt has no public switch for application acknowledgements (aiomqtt#345), and its
message iterator costs two event-loop turns a message. paho, underneath, has the switch,
and the queue aiomqtt fills can be read without waiting. Both rest on private attributes
(`Client._client`, the paho client; `Client._queue`, the incoming queue), so the
dependency is pinned below aiomqtt 3 and `tests/collector/ingest/test_aiomqtt_adapter.py`
fails when a release moves them.
"""

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


def queued(client: aiomqtt.Client, limit: int) -> list[aiomqtt.Message]:
    """Up to `limit` messages that have already arrived, taken at once, without the
    iterator's task per message."""
    queue = client._queue
    return [queue.get_nowait() for _ in range(min(limit, queue.qsize()))]
