"""A `Batch` payload made from payloads already encoded: no message is decoded or encoded
again, so bundling a backlog costs a byte join.

The outbox holds each message as the bytes committed for it (with the backlog mark
added as it leaves late, iotwire/backlog.py); a batch is those bytes as the members of
its `messages` array, inside the envelope `Batch` decodes.
"""

from collections.abc import Sequence

from iotwire.codec import MAX_PAYLOAD_BYTES
from iotwire.messages import MAX_BATCH_MESSAGES, SCHEMA_VERSION

_SEPARATOR = b","
_END = b"]}"


def batch_envelope(device: str) -> bytes:
    """The batch's bytes before its first message."""
    return b'{"v":%d,"kind":"batch","device":"%s","messages":[' % (
        SCHEMA_VERSION,
        device.encode(),
    )


def batch_payload(device: str, payloads: Sequence[bytes]) -> bytes:
    """The `Batch` of these encoded messages, in order."""
    if not payloads:
        raise ValueError("a batch holds at least one message")
    return batch_envelope(device) + _SEPARATOR.join(payloads) + _END


def batch_sizes(device: str, sizes: Sequence[int]) -> list[int]:
    """How to cut messages of these encoded sizes, in order, into batches that each fit
    one payload: the number of messages in each batch. A message too large to share a
    batch goes alone (as a batch of one, which the caller may send as itself)."""
    room = MAX_PAYLOAD_BYTES - len(batch_envelope(device)) - len(_END)
    counts: list[int] = []
    used = count = 0
    for size in sizes:
        needed = size + (len(_SEPARATOR) if count else 0)
        if count and (used + needed > room or count == MAX_BATCH_MESSAGES):
            counts.append(count)
            used, count, needed = 0, 0, size
        used += needed
        count += 1
    if count:
        counts.append(count)
    return counts
