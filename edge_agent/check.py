"""`edge-agent check`: is this box ready to leave, line by line.

Each line is a pass or a reason a technician can act on at the pole: the config, the
broker reached over TLS with the device's own credential, a message the broker accepted
and delivered back (which proves the ACL lets this device write its topics, where a
QoS 1 acknowledgement alone would not), every sensor read once, one frame from every
camera. A failure never stops the lines after it: the technician sees everything that is
wrong in one pass.
"""

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from edge_agent.agent import build_readers
from edge_agent.config import CameraSettings, LoadedAgent, SerialLineSource, load_agent
from edge_agent.i18n import _
from edge_agent.modbus.bus import ModbusBus
from edge_agent.sources.base import Source, SourceError
from edge_agent.status import EVERY_S, AgentStatus, read_status
from iotruntime.configfile import ConfigError
from iotruntime.connection import BrokerSettings, ProtocolChoice
from iotruntime.console import number_text
from iotwire.codec import DecodeError, decode, encode
from iotwire.messages import CommandAck, Reading
from iotwire.topics import Channel, topic_for

BROKER_TIMEOUT_S = 10.0
CAMERA_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Line:
    what: str
    ok: bool
    detail: str


async def first_reading(reader: Source, patience_s: float) -> tuple[Reading, ...]:
    """A reading, allowing a streaming instrument `patience_s` to send its first line."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await reader.read()
        except SourceError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.2)


async def read_each_once(
    loaded: LoadedAgent, only: str | None = None
) -> AsyncIterator[tuple[str, str, tuple[Reading, ...] | SourceError]]:
    """(name, type, readings or the error) for every source, or only the one named."""
    buses = {name: ModbusBus(settings) for name, settings in loaded.buses.items()}
    readers = build_readers(loaded, buses)
    settings = {s.name: s for s in loaded.config.sources}
    try:
        for name, reader in readers.items():
            if only not in (None, name):
                continue
            source = settings[name]
            patience = source.max_age_s + 1 if isinstance(source, SerialLineSource) else 0.0
            try:
                yield name, source.type, await first_reading(reader, patience)
            except SourceError as exc:
                yield name, source.type, exc
            finally:
                await reader.close()
    finally:
        for bus in buses.values():
            bus.close()


def _broker_reason(exc: BaseException, broker: BrokerSettings) -> str:
    text = str(exc)
    where = f"{broker.host}:{broker.port}"
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
        ca = broker.tls.ca_file if broker.tls else _("the system's CAs")
        return _("TLS: the broker's certificate at {where} is not signed by {ca}").format(
            where=where, ca=ca
        )
    if "authori" in text.lower() or "bad user" in text.lower():
        who = broker.username or _("the client certificate")
        return _("the broker refused {who}: bad user name or password (or not authorised)").format(
            who=who
        )
    if isinstance(exc, ConnectionRefusedError) or "refused" in text.lower():
        return _("nothing accepts connections at {where}").format(where=where)
    if isinstance(exc, TimeoutError) or "timed out" in text.lower():
        return _("no answer from {where} within {seconds} s").format(
            where=where, seconds=f"{BROKER_TIMEOUT_S:g}"
        )
    return f"{where}: {text or type(exc).__name__}"


async def check_broker(loaded: LoadedAgent) -> list[Line]:
    """Connect as the device, publish on its own cmd_ack topic and receive it back."""
    config = loaded.config
    broker, device = config.broker, config.device
    topic = topic_for(broker.topic_prefix, device.site, device.id, Channel.CMD_ACK)
    probe = CommandAck(
        device=device.id,
        seq=0,
        id=f"check-{uuid.uuid4().hex[:12]}",
        ok=True,
        ts=datetime.now(UTC),
        detail="edge-agent check",
    )
    failure: BaseException = TimeoutError()
    for version in ProtocolChoice(broker.protocol).candidates():
        try:
            async with (
                asyncio.timeout(BROKER_TIMEOUT_S),
                aiomqtt.Client(
                    **broker.client_kwargs(),
                    identifier=f"{device.id}-check-{uuid.uuid4().hex[:6]}",
                    protocol=version,
                    timeout=BROKER_TIMEOUT_S,
                ) as client,
            ):
                connected = Line(
                    _("broker"),
                    True,
                    _("{where}, TLS {tls}, as {who}").format(
                        where=f"{broker.host}:{broker.port}",
                        tls=_("on") if broker.tls else _("off"),
                        who=broker.username or _("the client certificate"),
                    ),
                )
                await client.subscribe(topic, qos=1)
                await client.publish(topic, encode(probe), qos=1)
                return [connected, await _echo(client, topic, probe)]
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            failure = exc
    return [
        Line(_("broker"), False, _broker_reason(failure, broker)),
        Line(_("publish"), False, _("not tried: no broker session")),
    ]


async def _echo(client: aiomqtt.Client, topic: str, probe: CommandAck) -> Line:
    try:
        async with asyncio.timeout(5):
            async for message in client.messages:
                try:
                    if decode(bytes(message.payload), CommandAck).id == probe.id:
                        return Line(
                            _("publish"),
                            True,
                            _("{topic} accepted and delivered back").format(topic=topic),
                        )
                except DecodeError:
                    continue
    except TimeoutError:
        pass
    return Line(
        _("publish"),
        False,
        _(
            "{topic}: the broker acknowledged but did not deliver it back;"
            " its ACL does not let this device write its own topics"
        ).format(topic=topic),
    )


async def check_sources(loaded: LoadedAgent) -> list[Line]:
    lines = []
    async for name, kind, result in read_each_once(loaded):
        what = _("sensor {name}").format(name=name)
        if isinstance(result, SourceError):
            lines.append(Line(what, False, f"{kind}: {result}"))
            continue
        faults = [r.parameter for r in result if r.value is None]
        values = [
            f"{r.parameter} {number_text(r.value)} {r.unit}" for r in result if r.value is not None
        ]
        shown = ", ".join(values[:3]) + (f" (+{len(values) - 3})" if len(values) > 3 else "")
        if faults:
            missing = _("no value for {parameters}").format(parameters=", ".join(faults))
            lines.append(Line(what, False, f"{kind}: {missing}"))
        else:
            lines.append(Line(what, True, f"{kind}: {shown}"))
    return lines


def grab_frame(camera: CameraSettings, timeout_s: float = CAMERA_TIMEOUT_S) -> Line:
    """One frame from the camera, as the agent opens it."""
    from edge_agent.sources.camera import is_file, open_capture  # the vision extra

    what = _("camera {name}").format(name=camera.name)
    if is_file(camera.url) and not Path(camera.url).is_file():
        return Line(what, False, _("{url}: no such file").format(url=camera.url))
    began = time.monotonic()
    capture = open_capture(camera.url)
    try:
        if not capture.isOpened():
            return Line(what, False, _("cannot open {url}").format(url=camera.url))
        while time.monotonic() - began < timeout_s:
            ok, image = capture.read()
            if ok and image is not None:
                height, width = image.shape[:2]
                return Line(
                    what,
                    True,
                    _("{width}x{height} frame from {url}").format(
                        width=width, height=height, url=camera.url
                    ),
                )
        return Line(
            what,
            False,
            _("{url} opened but sent no frame in {seconds} s").format(
                url=camera.url, seconds=f"{timeout_s:g}"
            ),
        )
    finally:
        capture.release()


def running_agent(loaded: LoadedAgent) -> AgentStatus | None:
    """The agent running on this box, known by the status it rewrites every few seconds."""
    status = read_status(loaded.config.state_dir)
    if status is None or time.time() - status.written_at > 3 * EVERY_S:
        return None
    return status


def agent_session(running: AgentStatus) -> list[Line]:
    """The broker as the running agent sees it. The broker binds a device's client id to
    its credential, so a second session of this device would take over the agent's and
    end its persistent session; the agent's own connection is the check instead."""
    if running.last_publish_at is None:
        last = _("nothing acknowledged yet")
    else:
        last = _("last publish acknowledged {seconds} s ago").format(
            seconds=f"{time.time() - running.last_publish_at:.0f}"
        )
    state = _("connected") if running.broker_connected else _("not connected")
    return [
        Line(
            _("broker"),
            running.broker_connected,
            _("the running agent (pid {pid}) is {state}, {last}").format(
                pid=running.pid, state=state, last=last
            ),
        ),
        Line(
            _("publish"),
            running.broker_connected,
            _(
                "not tried while the agent runs, which holds the device's session;"
                " stop it (systemctl stop edge-agent) to check the ACL as well"
            ),
        ),
    ]


async def run_checks(path: Path) -> list[Line]:
    try:
        loaded = load_agent(path)
    except ConfigError as exc:
        return [Line(_("config"), False, str(exc))]
    device = loaded.config.device
    summary = _("{path}: {device} ({kind}) at {site}").format(
        path=path, device=device.id, kind=device.kind, site=device.site
    )
    lines = [Line(_("config"), True, summary)]
    running = running_agent(loaded)
    lines += await check_broker(loaded) if running is None else agent_session(running)
    lines += await check_sources(loaded)
    for camera in loaded.config.cameras:
        lines.append(await asyncio.to_thread(grab_frame, camera))
    return lines
