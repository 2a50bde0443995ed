"""Telling each box what the collector has committed, so it may forget it.

A box keeps every message until it hears, on its own `committed` topic, that the message
is in the store or the spool; whatever stays unconfirmed it sends again. The broker's
acknowledgement alone is not enough: a broker that dies loses what it held in memory,
and a collector that dies in a shared subscription leaves its share waiting for it.
Confirmations are sent after the commit and are themselves fire-and-forget: one lost
costs a repeat, which the ledger counts as a duplicate and confirms again.
"""

import asyncio
import logging

import aiomqtt

from collector.arrivals import StreamKey
from iotwire.codec import encode
from iotwire.commits import seq_ranges
from iotwire.messages import Committed
from iotwire.topics import Channel, topic_for

log = logging.getLogger(__name__)

Positions = dict[StreamKey, list[int]]


def add_position(positions: Positions, key: StreamKey, seq: int) -> None:
    positions.setdefault(key, []).append(seq)


class ConfirmationPublisher:
    """Publishes `Committed` messages on the session it is attached to; with none (the
    broker is away) a confirmation is dropped and the box's resend brings it back."""

    def __init__(self, topic_prefix: str) -> None:
        self._prefix = topic_prefix
        self._client: aiomqtt.Client | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.confirmed = 0  # messages named in a confirmation the broker accepted
        self.failed = 0  # confirmations lost with a session

    def attach(self, client: aiomqtt.Client | None) -> None:
        self._client = client

    def publish(self, positions: Positions) -> None:
        client = self._client
        if client is None:
            return
        for (site, device, epoch), seqs in positions.items():
            topic = topic_for(self._prefix, site, device, Channel.COMMITTED)
            for ranges in seq_ranges(seqs):
                message = Committed(device=device, epoch=epoch, ranges=ranges)
                named = sum(last - first + 1 for first, last in ranges)
                task = asyncio.create_task(self._send(client, topic, encode(message), named))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _send(self, client: aiomqtt.Client, topic: str, payload: bytes, named: int) -> None:
        try:
            await client.publish(topic, payload, qos=1)
        except aiomqtt.MqttError as exc:
            self.failed += 1
            log.debug("confirmation on %s lost with the session: %s", topic, exc)
            return
        self.confirmed += named

    async def settle(self) -> None:
        """Wait for the confirmations under way: before a clean stop, so a box is not
        made to resend what was committed."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
