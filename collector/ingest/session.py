"""The collector's MQTT side: receive, have the batch committed, and only then acknowledge.

The session is persistent (clean_session off, a fixed client id) and acknowledgements are
manual: a message is acknowledged to the broker after the store committed it, so a
collector that dies mid-write leaves the message with the broker, which delivers it again.
Validation and the store's work are a committer's (collector/ingest/committer.py), in this
process or in one of its own. Invalid input is counted by reason, acknowledged and
dropped: it must not stall the stream or take good messages down with it. A store that is
unavailable is different: with a spool configured, the batch is committed to the spool
(collector/ingest/spool.py), acknowledged, and moved into the store when it is back; without one,
nothing is acknowledged, the session closes, and the broker keeps the messages until the
store is back. Each committed or spooled message that carries an epoch is then confirmed to
its box (collector/ingest/confirmations.py), which keeps it until then; batches committed
side by side are confirmed in the order they came, since a box takes an earlier piece
left unconfirmed behind a later one for lost.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt

from collector.arrivals import Arrival, stream_positions
from collector.config import IngestSettings
from collector.ingest.aiomqtt_adapter import ack, manual_acks, payload_size, queued
from collector.ingest.committer import OTHER_SENDERS, CommitResult, Committing
from collector.ingest.confirmations import ConfirmationPublisher, Positions, add_position
from collector.ingest.spool import Spool, Spooled
from collector.police.deliveries import MQTT
from collector.police.dispatch import DUTY_DESK, unit_channel
from collector.police.intake import plate_arrivals, record_plates
from collector.police.mqtt_alerts import MqttAlertPublisher
from collector.police.service import Police
from collector.stores.base import StoreUnavailableError
from iotruntime.connection import (
    BrokerSettings,
    ProtocolChoice,
    backoff_delay,
    mqtt_session,
    version_name,
)
from iotruntime.stopping import sleep_unless_stopped
from iotwire.topics import Channel, alerts_topic, dispatch_topic, subscription

log = logging.getLogger(__name__)

SUBSCRIBED = (Channel.TELEMETRY, Channel.HEALTH, Channel.BATCH, Channel.STATUS)
STORE_RETRY_STEPS = 3  # a failing store is retried within at most 0.5 s * 2**3
# Senders of invalid messages counted one by one (each a metrics series); past them,
# under OTHER_SENDERS: made-up topics must not grow the counters without bound.
MAX_INVALID_SENDERS = 200
# Payload bytes handed to one commit, beside `batch_messages`: a batch of a box's backlog
# holds up to a thousand messages, so a few hundred of them queued behind a slow commit
# would make one commit of a whole backlog, confirmed to the box only when all of it is in.
HANDOVER_BYTES = 2 * 1024 * 1024
# A flood: a handover of `batch_messages` messages or FLOOD_BYTES of payload, which live
# traffic never gathers while a commit runs (a fleet of a few hundred boxes sends a few
# kilobytes in that time); boxes draining their outboxes after an outage do, their
# backlog in batches of up to 256 KB. With a spool, a flood is spooled and confirmed
# rather than waiting for the store, and has the CPU to itself: the spool drains into the
# store once no flood has been spooled for FLOOD_QUIET_S, and meanwhile commits one batch
# every SPOOL_DRAIN_EVERY_S (a few hundred messages a second at the least).
FLOOD_BYTES = 512 * 1024
FLOOD_CHECK_S = 0.05
FLOOD_QUIET_S = 0.5
SPOOL_DRAIN_EVERY_S = 2.0


def alert_topics(broker: BrokerSettings, police: Police) -> dict[str, str]:
    """Each MQTT delivery channel of the police subsystem and its topic: every console's,
    each unit's dispatch topic and the duty desk's."""
    prefix = broker.topic_prefix
    topics = {MQTT: alerts_topic(prefix, "plate"), DUTY_DESK: alerts_topic(prefix, "escalated")}
    for unit in police.settings.units:
        topics[unit_channel(unit.name)] = dispatch_topic(prefix, unit.name)
    return topics


@dataclass
class IngestStats:
    received: int = 0
    stored_messages: int = 0
    duplicates: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_from: Counter[tuple[str, str]] = field(default_factory=Counter)
    store_failures: int = 0
    spooled: int = 0
    backlog: int = 0
    store_batches: int = 0
    store_seconds: float = 0.0
    _senders: set[str] = field(default_factory=set, repr=False)

    def dropped(self, sender: str, reason: str, count: int) -> None:
        """Count invalid messages by reason, and by sender and reason."""
        if sender not in self._senders:
            if len(self._senders) >= MAX_INVALID_SENDERS:
                sender = OTHER_SENDERS
            self._senders.add(sender)
        self.invalid[reason] += count
        self.invalid_from[sender, reason] += count

    def count(self, result: CommitResult) -> None:
        for (sender, reason), count in result.invalid_from.items():
            self.dropped(sender, reason, count)
        self.stored_messages += result.stored
        self.duplicates += result.duplicates
        self.backlog += result.backlog
        if result.store_seconds:
            self.store_batches += 1
            self.store_seconds += result.store_seconds


@dataclass
class _Handover:
    """A batch handed to the committer, or to the spool when ingest was `behind`, and
    the task that commits it; acknowledged to the broker when the task ends."""

    messages: list[aiomqtt.Message]
    task: asyncio.Task[None]
    behind: bool


def _size(messages: list[aiomqtt.Message]) -> int:
    return sum(payload_size(m) for m in messages)


def _is_flood(count: int, size: int, batch_messages: int) -> bool:
    return count >= batch_messages or size >= FLOOD_BYTES


class Ingest:
    def __init__(
        self,
        broker: BrokerSettings,
        settings: IngestSettings,
        committer: Committing,
        spool: Spool | None = None,
        police: Police | None = None,
        on_commit: Sequence[Callable[[list[Arrival]], None]] = (),
    ) -> None:
        """`on_commit` hear each batch the store committed, spool drains included (the
        wall's live feed, collector/wall/live.py; the alarms' health watch,
        collector/alarms/health.py); they must not block."""
        self._broker = broker
        self._on_commit = on_commit
        self._settings = settings
        self._committer = committer
        self._spool = spool
        self._police = police
        self._alerts = (
            MqttAlertPublisher(police.deliveries, police.wakeup, alert_topics(broker, police))
            if police
            else None
        )
        self._spooled = asyncio.Event()
        self._flood_until = 0.0  # monotonic: until FLOOD_QUIET_S after the last flood spooled
        self._drained_at = 0.0  # monotonic: the spool's drain last committed, or began
        self.confirmations = ConfirmationPublisher(broker.topic_prefix)
        self._protocol = ProtocolChoice(broker.protocol)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self.stats = IngestStats()
        self.connected = asyncio.Event()
        # Done when the batch handed over last has confirmed or spooled what it will.
        self._turn: asyncio.Future[None] | None = None

    @property
    def alerts_published(self) -> int:
        """Plate alerts the broker accepted from this collector."""
        return self._alerts.published if self._alerts is not None else 0

    async def run(self, stop: asyncio.Event) -> None:
        """Stay subscribed until `stop`, reconnecting with backoff after any failure;
        meanwhile drain the spool into the store whenever it holds anything."""
        async with asyncio.TaskGroup() as tasks:
            if self._spool is not None:
                tasks.create_task(self._drain_spool(self._spool, stop))
            await self._subscribe(stop)

    async def _subscribe(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            stored_before = self.stats.stored_messages
            store_failed = False
            try:
                # In a share group the session ends with the connection: the broker then
                # stops routing a share to a collector that died, and the boxes send again
                # what it held unconfirmed. A lone collector keeps its session, so what
                # arrives while it restarts waits for it at the broker.
                async with mqtt_session(
                    self._broker,
                    self._protocol,
                    manual_acks,
                    persistent=self._settings.share_group is None,
                    identifier=self._settings.client_id,
                ) as (client, version):
                    await self._session(client, version_name(version), stop)
                    return
            except aiomqtt.MqttError as exc:
                log.warning("broker session lost: %s", exc)
            except Exception:
                store_failed = True
                self.stats.store_failures += 1
                log.exception("store failed; messages stay with the broker until it is back")
            finally:
                self.connected.clear()
            # Back off harder while nothing gets through; a session that stored something
            # was healthy, and its successor starts from the shortest delay again. A failing
            # store is not the broker's fault: retry it soon, the broker holds the messages.
            if self.stats.stored_messages > stored_before:
                attempt = 0
            delay = backoff_delay(
                min(attempt, STORE_RETRY_STEPS) if store_failed else attempt,
                self._rng,
                self._broker.reconnect_max_s,
            )
            attempt += 1
            await sleep_unless_stopped(stop, delay)

    async def _session(self, client: aiomqtt.Client, version: str, stop: asyncio.Event) -> None:
        prefix, group = self._broker.topic_prefix, self._settings.share_group
        # Plate reads are taken with or without the police database: the boxes keep
        # every message until it is confirmed. Without one a read is counted in the
        # ledger and not kept.
        for channel in (*SUBSCRIBED, Channel.PLATE):
            await client.subscribe(subscription(prefix, channel, share_group=group), qos=1)
        publishing = None
        if self._alerts is not None:
            publishing = asyncio.create_task(self._alerts.run(client))
        self.confirmations.attach(client)
        self.connected.set()
        if self._police is None:
            log.info("plate reads are counted and confirmed, not kept: no `alerts` section")
        log.info(
            "subscribed to %s/v1 on %s:%s (MQTT %s)",
            prefix,
            self._broker.host,
            self._broker.port,
            version,
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            await self._pipeline(client, stopping)
            await self.confirmations.settle()
        finally:
            self.confirmations.attach(None)
            stopping.cancel()
            if publishing is not None:
                publishing.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await publishing

    async def _pipeline(self, client: aiomqtt.Client, stopping: asyncio.Task[bool]) -> None:
        """Keep the committer busy while messages keep arriving: up to its `depth` batches
        are handed over at once, each taking whatever has arrived, up to `batch_messages`
        and `HANDOVER_BYTES` (one commit for many messages under load, no added wait when
        the stream is quiet), and each is acknowledged when its commit ends, in order,
        while the next ones commit. Nothing is acknowledged before its commit.

        With a spool, a flood (`batch_messages` messages or `FLOOD_BYTES`) that finds a
        commit still under way is spooled instead (`behind`), and so is everything after
        it until the spool has drained into the store: boxes draining their outboxes
        after an outage are confirmed at the speed of the spool's disk, not of the store,
        and their backlog leaves their small disks as fast as they can send it. Live
        traffic goes straight to the store. On stop, the commits under way finish and are
        acknowledged; what arrived after them stays with the broker."""
        messages, limit = client.messages, self._settings.batch_messages
        in_commit: deque[_Handover] = deque()
        held: list[aiomqtt.Message] = []
        try:
            while True:
                if not in_commit and not held:
                    receiving = asyncio.ensure_future(anext(messages))
                    done, _ = await asyncio.wait(
                        {receiving, stopping}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if receiving not in done:
                        receiving.cancel()
                        return
                    first = receiving.result()
                    held = [first, *queued(client, limit - 1, HANDOVER_BYTES - payload_size(first))]
                if stopping.done():
                    if not in_commit:
                        return
                else:
                    size = _size(held)
                    more = queued(client, limit - len(held), HANDOVER_BYTES - size)
                    held += more
                    committing = sum(not h.behind for h in in_commit)
                    flood = _is_flood(len(held), size + _size(more), limit)
                    # Behind a flood still on its way to the spool, as behind one in it.
                    behind = self._spool is not None and (
                        (flood and committing > 0) or any(h.behind for h in in_commit)
                    )
                    depth = self._committer.depth
                    if held and len(in_commit) <= depth and (behind or committing < depth):
                        self._hand_over(in_commit, held, behind=behind)
                        held = []
                        continue
                oldest = in_commit[0]
                # With a spool, what arrives meanwhile is looked at every FLOOD_CHECK_S: a
                # flood is spooled as it comes, not after the commit under way.
                timeout = FLOOD_CHECK_S if self._spool is not None else None
                await asyncio.wait(
                    {oldest.task, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not oldest.task.done():
                    if not stopping.done():
                        continue
                    await oldest.task  # stopping: let the commits under way end first
                oldest.task.result()
                in_commit.popleft()
                for message in oldest.messages:
                    ack(client, message)
        finally:
            for handover in in_commit:
                if not handover.task.done():  # the session failed: let them end first
                    with contextlib.suppress(Exception):
                        await handover.task

    def _hand_over(
        self, in_commit: deque["_Handover"], batch: list[aiomqtt.Message], *, behind: bool
    ) -> None:
        """Start committing `batch` (spooling it if `behind`); what it confirms or spools
        waits for the batch handed over before it to have done so (`_turn`)."""
        turn, self._turn = self._turn, asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._commit_messages(batch, turn, self._turn, behind))
        in_commit.append(_Handover(batch, task, behind))

    async def _commit_messages(
        self,
        batch: list[aiomqtt.Message],
        turn: asyncio.Future[None] | None,
        done: asyncio.Future[None],
        behind: bool,
    ) -> None:
        try:
            received = datetime.now(UTC)
            self.stats.received += len(batch)
            arrivals = [
                (str(m.topic), bytes(m.payload), False)
                for m in batch
                if isinstance(m.payload, bytes | bytearray)
            ]
            if len(arrivals) < len(batch):
                self.stats.invalid["bad_payload"] += len(batch) - len(arrivals)
            await self.handle_batch(arrivals, received, turn, behind=behind)
        finally:
            done.set_result(None)  # failed or not, the next batch may go on

    async def handle_batch(
        self,
        batch: list[Arrival],
        received: datetime,
        turn: asyncio.Future[None] | None = None,
        *,
        behind: bool = False,
    ) -> None:
        """Record its plate reads, then have the batch committed to the store, or to the
        spool when the store is down or the spool already holds messages: alerts do not
        wait for the store. Raises only when the reads or the batch could not be committed;
        then nothing of the batch may be acknowledged.

        Batches commit side by side (up to the committer's `depth`), each from a thread
        of its own, and a later one may be committed first. So nothing of this one is
        spooled, confirmed or heard by `on_commit` before `turn` (the batch handed over
        before it is done): a box that heard a later piece confirmed first would take the
        earlier one, still unconfirmed, for lost and send it all again."""
        police = self._police
        if police is not None and (reads := plate_arrivals(batch)):
            prefix = self._broker.topic_prefix
            alerts = await asyncio.to_thread(record_plates, police.plates, prefix, reads, received)
            if alerts:
                police.wakeup.notify()
        spool = self._spool
        if spool is not None and (spool.depth or behind):
            if turn is not None:
                await turn
            self._to_spool(spool, batch, received)
            return
        result = await self._commit(batch, received)
        if turn is not None:
            await turn
        if result.unavailable is None:
            self.confirmations.publish(result.committed)
            for listener in self._on_commit:
                listener(batch)
            return
        if spool is None:
            raise StoreUnavailableError(result.unavailable)
        log.warning("store unavailable, spooling until it is back: %s", result.unavailable)
        self._to_spool(spool, [batch[i] for i in result.valid], received)

    def _to_spool(self, spool: Spool, batch: list[Arrival], received: datetime) -> None:
        spool.put(((topic, payload) for topic, payload, _ in batch), received)
        size = sum(len(payload) for _, payload, _ in batch)
        if _is_flood(len(batch), size, self._settings.batch_messages):
            self._flood_until = time.monotonic() + FLOOD_QUIET_S
        self.stats.spooled += len(batch)
        self._spooled.set()
        positions: Positions = {}
        for topic, payload, _ in batch:
            for key, seq in stream_positions(topic, payload, self._broker.topic_prefix):
                add_position(positions, key, seq)
        self.confirmations.publish(positions)

    async def _commit(self, batch: list[Arrival], received: datetime) -> CommitResult:
        result = await asyncio.to_thread(self._committer.commit, batch, received)
        self.stats.count(result)
        return result

    def _flood_pause(self) -> float:
        """How long the spool's drain waits before its next commit: while a flood is
        being spooled, until it ends or SPOOL_DRAIN_EVERY_S has passed since the last."""
        now = time.monotonic()
        if now >= self._flood_until:
            return 0.0
        return max(0.0, min(self._flood_until, self._drained_at + SPOOL_DRAIN_EVERY_S) - now)

    async def _drain_spool(self, spool: Spool, stop: asyncio.Event) -> None:
        """Move spooled messages into the store, oldest first, once it takes them again.
        Each new reason it cannot is logged once, so a drain stuck on something other
        than a store that is down says what holds it."""
        attempt, reason = 0, ""
        while not stop.is_set():
            if not spool.depth:
                self._spooled.clear()
                waiting = asyncio.create_task(self._spooled.wait())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                stopping.cancel()
                self._drained_at = time.monotonic()
                continue
            if pause := self._flood_pause():
                await sleep_unless_stopped(stop, pause)
                continue
            items = spool.peek(self._settings.batch_messages, HANDOVER_BYTES)
            by_arrival: dict[datetime, list[Spooled]] = {}
            for item in items:
                by_arrival.setdefault(item.received, []).append(item)
            try:
                for received, arrived in by_arrival.items():
                    batch = [(item.topic, item.payload, True) for item in arrived]
                    result = await self._commit(batch, received)
                    if result.unavailable is not None:
                        raise StoreUnavailableError(result.unavailable)
                    spool.remove(item.id for item in arrived)
                    self._drained_at = time.monotonic()
                    for listener in self._on_commit:
                        listener(batch)
            except Exception as exc:  # the drain must outlive any failure of the store
                if f"{exc!r}" != reason:
                    reason = f"{exc!r}"
                    log.warning("spool drain waits for the store: %s", reason)
                delay = backoff_delay(min(attempt, STORE_RETRY_STEPS), self._rng)
                attempt += 1
                await sleep_unless_stopped(stop, delay)
                continue
            attempt, reason = 0, ""
            if not spool.depth:
                log.info("spool drained into the store")
