"""The agent's MQTT session: announce itself, drain the outbox, survive the network.

Messages go out in sequence order, a bounded window at a time, at QoS 1; a message is
removed from the outbox only once the broker has acknowledged it. A session that breaks
mid-window leaves the unacknowledged messages in the outbox to be sent again, so the
collector may see a message twice but never misses one. The retained status topic holds
"online" while the session lives and the broker publishes the last will, "offline", when
it dies uncleanly. The session is MQTT 5 where the broker speaks it, 3.1.1 otherwise; in
either, a message that waited in the outbox longer than `backlog_after_s` goes out with
`"backlog":true` added to its payload (iotwire/backlog.py), so the collector can tell a
replayed outage from live data.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import aiomqtt

from edge_agent import __version__
from edge_agent.config import DeviceSettings
from edge_agent.outbox import Entry, Outbox
from iotruntime.connection import (
    BrokerSettings,
    ProtocolChoice,
    backoff_delay,
    mqtt_session,
    version_name,
)
from iotruntime.stopping import sleep_unless_stopped
from iotwire.backlog import marked
from iotwire.codec import DecodeError, decode, encode
from iotwire.messages import Command, CommandAck, Status
from iotwire.topics import Channel, command_filter, topic_for

log = logging.getLogger(__name__)


class Uplink:
    def __init__(
        self,
        broker: BrokerSettings,
        device: DeviceSettings,
        outbox: Outbox,
        boot_id: str,
        *,
        window: int = 64,
        backlog_after_s: float = 10.0,
        commands: Callable[[Command], Awaitable[CommandAck]] | None = None,
    ) -> None:
        self._broker = broker
        self._device = device
        self._outbox = outbox
        self._boot_id = boot_id
        self._window = window
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._protocol = ProtocolChoice(broker.protocol)
        self._backlog_after_s = backlog_after_s
        self._commands = commands
        self.connected = False
        self.last_publish_at: float | None = None  # when the broker last acknowledged

    def _topic(self, channel: Channel) -> str:
        return topic_for(self._broker.topic_prefix, self._device.site, self._device.id, channel)

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        return encode(
            Status(
                device=self._device.id,
                seq=self._outbox.last_seq(),
                state=state,
                ts=datetime.now(UTC),
                version=__version__,
                boot_id=self._boot_id,
            )
        )

    async def run(self, stop: asyncio.Event, drain_timeout_s: float = 5.0) -> None:
        """Keep a session up until `stop`; then drain for a while and say goodbye."""
        attempt = 0
        while not stop.is_set():
            will = aiomqtt.Will(self._topic(Channel.STATUS), self._status("offline"), 1, True)
            try:
                async with mqtt_session(
                    self._broker,
                    self._protocol,
                    identifier=self._device.id,
                    will=will,
                    timeout=10,
                    max_inflight_messages=self._window,
                ) as (client, version):
                    attempt = 0
                    self.connected = True
                    log.info(
                        "connected to %s:%s (MQTT %s)",
                        self._broker.host,
                        self._broker.port,
                        version_name(version),
                    )
                    await client.publish(
                        self._topic(Channel.STATUS), self._status("online"), qos=1, retain=True
                    )
                    serving = await self._serve_commands(client)
                    try:
                        await self._drain(client, stop)
                        await self._final_drain(client, drain_timeout_s)
                    finally:
                        if serving is not None:
                            serving.cancel()
                    await client.publish(
                        self._topic(Channel.STATUS), self._status("offline"), qos=1, retain=True
                    )
                    return
            except aiomqtt.MqttError as exc:
                self.connected = False
                delay = backoff_delay(attempt, self._rng, self._broker.reconnect_max_s)
                attempt += 1
                log.warning("broker unreachable (%s); retrying in %.1f s", exc, delay)
                await sleep_unless_stopped(stop, delay)

    async def _serve_commands(self, client: aiomqtt.Client) -> "asyncio.Task[None] | None":
        """Subscribe to this device's commands and answer each in the background."""
        if self._commands is None:
            return None
        prefix, device = self._broker.topic_prefix, self._device
        await client.subscribe(command_filter(prefix, device.site, device.id), qos=1)
        return asyncio.create_task(self._answer(client, self._commands))

    async def _answer(
        self, client: aiomqtt.Client, handle: Callable[[Command], Awaitable[CommandAck]]
    ) -> None:
        async for message in client.messages:
            try:
                command = decode(bytes(message.payload), Command)
            except DecodeError as exc:
                log.warning("command on %s dropped: %s", message.topic, exc)
                continue
            if command.device != self._device.id:
                log.warning("command for %s on this device's topic dropped", command.device)
                continue
            try:
                ack = await handle(command)
            except Exception as exc:  # a failing command is an answer, not a dead session
                log.exception("command %s failed", command.name)
                ack = CommandAck(
                    device=self._device.id,
                    seq=command.seq,
                    id=command.id,
                    ok=False,
                    ts=datetime.now(UTC),
                    detail=f"failed: {exc!r}"[:4096],
                )
            await client.publish(self._topic(Channel.CMD_ACK), encode(ack), qos=1)

    async def _drain(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        changed = self._outbox.changed
        while not stop.is_set():
            changed.clear()
            batch = self._outbox.peek(self._window)
            if batch:
                await self._publish(client, batch)
                continue
            waiters = [asyncio.create_task(changed.wait()), asyncio.create_task(stop.wait())]
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    async def _final_drain(self, client: aiomqtt.Client, timeout_s: float) -> None:
        """On shutdown, send what is queued if the broker is quick; the rest waits on disk."""
        try:
            async with asyncio.timeout(timeout_s):
                while batch := self._outbox.peek(self._window):
                    await self._publish(client, batch)
        except TimeoutError:
            log.info("shutdown: %d message(s) stay in the outbox", self._outbox.depth())

    async def _publish(self, client: aiomqtt.Client, batch: list[Entry]) -> None:
        # One task per message: QoS 1 acknowledgements come back independently, and a
        # failure cancels the rest of the window, which stays in the outbox. A lost
        # connection fails every task of the window; the session needs to hear it once,
        # as the MqttError its reconnect loop handles, not as a group of them.
        # A message that waited longer than `backlog_after_s` waited out an outage (or the
        # agent being down): it goes out marked as backlog, so nothing downstream takes
        # it for news.
        late = time.time() - self._backlog_after_s
        try:
            async with asyncio.TaskGroup() as group:
                for entry in batch:
                    topic = self._topic(entry.channel)
                    payload = marked(entry.payload) if entry.created < late else entry.payload
                    group.create_task(client.publish(topic, payload, qos=1))
        except* aiomqtt.MqttError as lost:
            raise lost.exceptions[0] from None
        self._outbox.remove(entry.seq for entry in batch)
        self.last_publish_at = time.time()
