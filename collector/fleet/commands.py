"""Commands to a field box, from the operations center, and their acknowledgements.

The collector's broker credential is the only one the ACL lets write a device's `cmd`
topics. A command is published at QoS 1 on `{prefix}/v1/{site}/{device}/cmd/{name}` and
answered on the device's `cmd_ack` topic with the same id; no answer within the timeout
means the box is offline or its agent is not running (the command then waits in the
box's broker session, and the agent refuses it once it is older than it accepts).

It connects on the collectors' listener beside the running collector, under a client id
of its own: `command.` and the command's id. The dot keeps it out of every device's reach,
since the field listeners make each device's client id its username, a device id or
`CN=<device id>`, neither of which has one.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime

import aiomqtt

from collector.i18n import services
from iotruntime.connection import BrokerSettings, ProtocolChoice
from iotwire.codec import DecodeError, decode, encode
from iotwire.messages import Command, CommandAck, CommandName
from iotwire.topics import Channel, topic_for

_ = services.gettext


class NoAnswerError(Exception):
    """The device did not acknowledge in time."""


async def send_command(
    broker: BrokerSettings,
    site: str,
    device: str,
    name: CommandName,
    args: dict[str, str | int | float | bool],
    timeout_s: float = 15.0,
    *,
    command_id: str | None = None,
    resend_every_s: float | None = None,
) -> CommandAck:
    """Send a command and wait for its acknowledgement. With `resend_every_s`, the same
    command (its id and arguments; a fresh time) goes out again at that pace until it is
    answered: a box that restarts before it can answer (a pushed config) answers the
    question when it hears it again."""
    ident = command_id or uuid.uuid4().hex
    prefix = broker.topic_prefix
    topic = topic_for(prefix, site, device, Channel.CMD, name)
    version = ProtocolChoice(broker.protocol).candidates()[0]
    async with aiomqtt.Client(
        **broker.client_kwargs(), identifier=f"command.{ident[:12]}", protocol=version
    ) as client:
        await client.subscribe(topic_for(prefix, site, device, Channel.CMD_ACK), qos=1)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    command = Command(
                        device=device,
                        seq=time.time_ns() // 1_000_000,
                        id=ident,
                        name=name,
                        args=args,
                        ts=datetime.now(UTC),
                    )
                    await client.publish(topic, encode(command), qos=1)
                    try:
                        async with asyncio.timeout(resend_every_s):
                            return await _answer(client, ident)
                    except TimeoutError:
                        continue
        except TimeoutError:
            pass
    raise NoAnswerError(
        _("{device} did not acknowledge {command} within {seconds} s: is it online?").format(
            device=device, command=name, seconds=f"{timeout_s:g}"
        )
    )


async def _answer(client: aiomqtt.Client, ident: str) -> CommandAck:
    async for message in client.messages:
        try:
            ack = decode(bytes(message.payload), CommandAck)
        except DecodeError:
            continue
        if ack.id == ident:
            return ack
    raise NoAnswerError(_("the broker ended the session"))
