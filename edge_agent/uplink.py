"""The agent's MQTT session: announce itself, drain the outbox, survive the network.

Messages go out in sequence order, a bounded window at a time, at QoS 1. The broker's
acknowledgement paces the window; the message stays in the outbox until the collector
confirms, on this box's `committed` topic, that it is committed (iotwire `Committed`), and
goes out again if no confirmation comes within the outbox's `resend_after_s`. So a broker
that dies with messages in memory, or a collector that dies holding a share of them, costs
a repeat, never a message; the collector's ledger counts the repeat as a duplicate. With
`outbox.delete_on: broker_ack` (a collector that does not confirm) a message leaves the
outbox on the broker's acknowledgement, as before confirmations. A session that breaks
mid-window leaves the unacknowledged messages in the outbox to be sent again, so the
collector may see a message twice but never misses one. The retained status topic holds
"online" while the session lives and the broker publishes the last will, "offline", when
it dies uncleanly. The session is MQTT 5 where the broker speaks it, 3.1.1 otherwise; in
either, a message that waited in the outbox longer than `backlog_after_s` goes out with
`"backlog":true` added to its payload (iotwire/backlog.py), so the collector can tell a
replayed outage from live data. With confirmations, a backlog of telemetry and health goes
out as `batch` messages (iotwire/batches.py): one publish for up to a thousand messages,
so a day's backlog drains at the speed of the collector's commits rather than of MQTT
round trips.
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
from iotruntime.stopping import finished, sleep_unless_stopped
from iotwire.backlog import marked
from iotwire.batches import batch_payload, batch_sizes
from iotwire.codec import DecodeError, decode, encode
from iotwire.messages import Command, CommandAck, Committed, Status
from iotwire.topics import Channel, TopicError, command_filter, parse_topic, topic_for

log = logging.getLogger(__name__)

BATCHED = frozenset((Channel.TELEMETRY, Channel.HEALTH))
# One round of the drain: as many messages as a few full batches hold, and no more than
# a few megabytes of payload in memory (plate reads carry their crops).
PEEK_MESSAGES = 4096
PEEK_BYTES = 4 * 1024 * 1024


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
        commands: Callable[[Command], Awaitable[CommandAck | None]] | None = None,
        confirmations: bool = True,
        resend_after_s: float = 20.0,
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
        self._confirmations = confirmations
        self._resend_after_s = resend_after_s
        self.connected = False
        self.last_publish_at: float | None = None  # when the broker last acknowledged
        self.last_confirmed_at: float | None = None  # when the collector last confirmed
        self.confirmed = 0  # messages the collector confirmed in this run
        self._heard = asyncio.Event()  # set on each confirmation

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
                epoch=self._outbox.epoch,
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
                    serving = await self._listen(client)
                    try:
                        unfinished = await self._drain(client, stop)
                        await self._final_drain(client, drain_timeout_s, unfinished)
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

    async def _listen(self, client: aiomqtt.Client) -> "asyncio.Task[None] | None":
        """Subscribe to this device's confirmations and commands, and serve both in the
        background: confirmations at once, commands one at a time in their own task, so a
        slow command does not hold the outbox full of what is already committed."""
        prefix, device = self._broker.topic_prefix, self._device
        if self._confirmations:
            committed = topic_for(prefix, device.site, device.id, Channel.COMMITTED)
            await client.subscribe(committed, qos=1)
        if self._commands is not None:
            await client.subscribe(command_filter(prefix, device.site, device.id), qos=1)
        if not self._confirmations and self._commands is None:
            return None
        return asyncio.create_task(self._receive(client, self._commands))

    async def _receive(
        self,
        client: aiomqtt.Client,
        handle: Callable[[Command], Awaitable[CommandAck | None]] | None,
    ) -> None:
        commands: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        answering = asyncio.create_task(self._answer(client, commands, handle)) if handle else None
        try:
            async for message in client.messages:
                try:
                    channel = parse_topic(str(message.topic), self._broker.topic_prefix).channel
                except TopicError:
                    log.warning("message on unexpected topic %s dropped", message.topic)
                    continue
                if channel is Channel.COMMITTED:
                    self._confirmed(bytes(message.payload))
                elif channel is Channel.CMD and handle is not None:
                    commands.put_nowait(message)
        finally:
            if answering is not None:
                answering.cancel()

    def _confirmed(self, payload: bytes) -> None:
        try:
            confirmation = decode(payload, Committed)
        except DecodeError as exc:
            log.warning("confirmation dropped: %s", exc)
            return
        if confirmation.device != self._device.id:
            log.warning("confirmation for %s on this device's topic dropped", confirmation.device)
            return
        self.confirmed += self._outbox.confirm(confirmation.epoch, confirmation.ranges)
        self.last_confirmed_at = time.time()
        self._heard.set()

    async def _answer(
        self,
        client: aiomqtt.Client,
        commands: "asyncio.Queue[aiomqtt.Message]",
        handle: Callable[[Command], Awaitable[CommandAck | None]],
    ) -> None:
        while True:
            message = await commands.get()
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
            if ack is not None:  # None: not known yet, answered when asked again
                await client.publish(self._topic(Channel.CMD_ACK), encode(ack), qos=1)

    async def _drain(
        self, client: aiomqtt.Client, stop: asyncio.Event
    ) -> "asyncio.Task[None] | None":
        """Send what is due; when nothing is, wait for a new message, for the stop, or,
        while messages await confirmation, for the first of them to fall due again. A
        round of publishes still going at the stop is returned, for the final drain to
        give it what is left of the shutdown's time: cut at once, what it had handed the
        broker would go out again (a duplicate), and thousands of single messages sent
        again can take a loaded broker longer than systemd waits."""
        changed = self._outbox.changed
        while not stop.is_set():
            changed.clear()
            batch = self._take()
            if batch:
                sending = asyncio.create_task(self._publish(client, batch))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({sending, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not sending.done():
                    return sending
                sending.result()
                continue
            recheck = self._resend_after_s / 4 if self._outbox.unconfirmed() else None
            waiters = [asyncio.create_task(changed.wait()), asyncio.create_task(stop.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=recheck, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
        return None

    async def _final_drain(
        self, client: aiomqtt.Client, timeout_s: float, unfinished: "asyncio.Task[None] | None"
    ) -> None:
        """On shutdown, finish the round in progress, send what is queued and hear it
        confirmed if broker and collector are quick; the rest waits on disk, and what was
        sent unconfirmed goes out again after the restart unless its confirmation is
        waiting in the broker by then. Each step is bounded by what is left of
        `timeout_s` (iotruntime/stopping.py says why not by one cancellation)."""
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        if unfinished is None or await finished(unfinished, left()):
            while batch := self._take():
                if not await finished(self._publish(client, batch), left()):
                    break
            # Only if a collector has confirmed anything in this run: with none there (or
            # one that does not confirm) waiting would only delay the stop.
            while self.last_confirmed_at is not None and self._outbox.unconfirmed() and left():
                self._heard.clear()
                await finished(self._heard.wait(), left())
        if self._outbox.depth():
            log.info("shutdown: %d message(s) stay in the outbox", self._outbox.depth())

    def _take(self) -> list[Entry]:
        """The next messages to send: with confirmations, a backlog's worth at once, to
        go out in batches; without, a window of single messages."""
        if self._confirmations:
            return self._outbox.peek(PEEK_MESSAGES, PEEK_BYTES)
        return self._outbox.peek(self._window)

    def _units(self, entries: list[Entry]) -> list[tuple[str, bytes]]:
        """Topic and payload of each publish. A message that waited longer than
        `backlog_after_s` waited out an outage (or the agent being down): it goes out
        marked as backlog, so nothing downstream takes it for news. With confirmations,
        runs of telemetry and health going out for the first time go as batches; plate
        reads, and whatever goes out again, go alone, so a broker that refuses batches
        (its ACL not yet rewritten) still gets every message."""
        late = time.time() - self._backlog_after_s
        units: list[tuple[str, bytes]] = []
        run: list[Entry] = []

        def payload(entry: Entry) -> bytes:
            return marked(entry.payload) if entry.created < late else entry.payload

        def flush() -> None:
            payloads = [payload(entry) for entry in run]
            first = 0
            for count in batch_sizes(self._device.id, [len(p) for p in payloads]):
                if count == 1:
                    units.append((self._topic(run[first].channel), payloads[first]))
                else:
                    batch = batch_payload(self._device.id, payloads[first : first + count])
                    units.append((self._topic(Channel.BATCH), batch))
                first += count
            run.clear()

        for entry in entries:
            if self._confirmations and entry.channel in BATCHED and not entry.resent:
                run.append(entry)
                continue
            flush()
            units.append((self._topic(entry.channel), payload(entry)))
        flush()
        return units

    async def _publish(self, client: aiomqtt.Client, entries: list[Entry]) -> None:
        # One task per publish: QoS 1 acknowledgements come back independently, and a
        # failure cancels the rest, which stays in the outbox. A lost connection fails
        # every task; the session needs to hear it once, as the MqttError its reconnect
        # loop handles, not as a group of them. No more than a window of them is handed
        # to the client at once (the broker takes no more in flight anyway): aiomqtt
        # scans all its pending calls on every publish, so a round of thousands of single
        # messages (what goes out again is sent alone) would cost time quadratic in it.
        turns = asyncio.Semaphore(self._window)

        async def publish(topic: str, payload: bytes) -> None:
            async with turns:
                await client.publish(topic, payload, qos=1)

        try:
            async with asyncio.TaskGroup() as group:
                for topic, payload in self._units(entries):
                    group.create_task(publish(topic, payload))
        except* aiomqtt.MqttError as lost:
            raise lost.exceptions[0] from None
        self._outbox.sent(entries)
        self.last_publish_at = time.time()
