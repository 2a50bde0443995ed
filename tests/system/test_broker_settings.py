"""What `collector broker-config` asks of Mosquitto beyond who may connect, tried on a real
broker running its configuration as Debian's `mosquitto` user:

1. Confirmations (`committed`): a box reads its own and no other box's, and writes none;
   the collectors write them.
2. The wire contract's size: a payload of `MAX_PAYLOAD_BYTES` passes, one byte more is
   neither forwarded nor queued, and a packet far larger costs its sender the connection.
3. A box registered after the broker started is refused until `broker-config --reload`,
   then admitted, while the clients already connected stay connected; the pid file is
   followed only to the broker running the config written.

The whole module shares one site, built under a umask of 077, as a hardened host's root
shell has it: the folder broker-config makes must still open to the broker's user.
"""

import asyncio
import os
from collections.abc import Iterator

import aiomqtt
import pytest

from collector.fleet.broker_config import PACKET_HEADROOM, BrokerReloadError, reload_broker
from iotruntime.connection import BrokerSettings
from iotwire import Committed, encode
from iotwire.codec import MAX_PAYLOAD_BYTES
from testbed.waiting import wait_until
from tests.system.broker_site import SITE, Site, running_site

pytestmark = pytest.mark.servers

EPOCH = "0123456789abcdef"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    umask = os.umask(0o077)
    try:
        yield from running_site(tmp_path_factory.mktemp("site"))
    finally:
        os.umask(umask)


def topic(device: str, channel: str) -> str:
    return f"pq/v1/{SITE}/{device}/{channel}"


def committed(device: str, last: int) -> bytes:
    return encode(Committed(device=device, epoch=EPOCH, ranges=((1, last),)))


async def receive(
    client: aiomqtt.Client, count: int, seconds: float = 5
) -> list[tuple[str, bytes]]:
    """What `client` receives until `count` messages came and a moment more (for any
    that should not have), or `seconds` passed."""
    received: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(seconds) as deadline:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append((str(message.topic), message.payload))
                if len(received) == count:
                    deadline.reschedule(asyncio.get_running_loop().time() + 0.3)
    except TimeoutError:
        pass
    return received


async def connect(settings: BrokerSettings) -> None:
    async with aiomqtt.Client(**settings.client_kwargs(), timeout=5):
        pass


async def admitted(settings: BrokerSettings, seconds: float = 5) -> None:
    """Wait for the broker to admit `settings`: it reloads between two turns of its loop,
    a moment after the signal."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                return await connect(settings)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)


def test_a_box_reads_only_its_own_confirmations_and_writes_none(site: Site) -> None:
    cam, air = topic("cam-dd-07", "committed"), topic("air-dd-01", "committed")
    ap = topic("ap-dd-03", "committed")
    real = {
        cam: committed("cam-dd-07", 5),
        air: committed("air-dd-01", 7),
        ap: committed("ap-dd-03", 9),
    }

    async def main() -> tuple[list[tuple[str, bytes]], ...]:
        async with (
            aiomqtt.Client(**site.collector().client_kwargs()) as collector,
            aiomqtt.Client(**site.device("cam-dd-07").client_kwargs()) as by_password,
            aiomqtt.Client(**site.device("air-dd-01").client_kwargs()) as by_certificate,
        ):
            await collector.subscribe("pq/v1/+/+/committed", qos=1)
            await by_password.subscribe("pq/v1/+/+/committed", qos=1)  # every box's
            await by_certificate.subscribe(air, qos=1)
            await by_certificate.subscribe(cam, qos=1)  # another box's
            # Forged confirmations, which would make a box forget what was never stored:
            # on its own topic, and on another's.
            await by_password.publish(cam, committed("cam-dd-07", 1_000_000), qos=1)
            await by_password.publish(air, committed("air-dd-01", 1_000_000), qos=1)
            await by_certificate.publish(cam, committed("cam-dd-07", 1_000_000), qos=1)
            for name, payload in real.items():
                await collector.publish(name, payload, qos=1)
            return (
                await receive(collector, 3),
                await receive(by_password, 1),
                await receive(by_certificate, 1),
            )

    by_collector, by_password, by_certificate = asyncio.run(main())
    assert sorted(by_collector) == sorted(real.items())  # the collectors' own, no forgery
    assert by_password == [(cam, real[cam])]
    assert by_certificate == [(air, real[air])]


def test_the_broker_holds_payloads_to_the_wire_maximum(site: Site) -> None:
    telemetry = topic("cam-dd-07", "telemetry")
    box = site.device("cam-dd-07")

    async def main() -> list[int]:
        async with aiomqtt.Client(**site.collector().client_kwargs()) as collector:
            await collector.subscribe("pq/v1/+/+/telemetry", qos=1)
            async with aiomqtt.Client(**box.client_kwargs()) as sender:
                await sender.publish(telemetry, b"m" * MAX_PAYLOAD_BYTES, qos=1)
                await sender.publish(telemetry, b"o" * (MAX_PAYLOAD_BYTES + 1), qos=1)
                await sender.publish(telemetry, b"{}", qos=1)  # the session survives it
            return [len(payload) for _, payload in await receive(collector, 2)]

    assert asyncio.run(main()) == [MAX_PAYLOAD_BYTES, 2]

    async def far_over() -> None:
        # The broker drops the connection unanswered; the client learns it by its timeout.
        async with aiomqtt.Client(**box.client_kwargs(), timeout=2) as sender:
            await sender.publish(telemetry, bytes(MAX_PAYLOAD_BYTES + PACKET_HEADROOM), qos=1)

    with pytest.raises(aiomqtt.MqttError):
        asyncio.run(far_over())
    log = site.work / "mosquitto.log"
    wait_until(
        lambda: "cam-dd-07 disconnected due to oversize packet" in log.read_text(), 5, "refused"
    )


def test_a_box_registered_while_the_broker_runs_connects_after_a_reload(site: Site) -> None:
    code, out = site.provision("cam-dd-08", "camera_pole")
    assert code == 0, out
    code, out = site.collector_cli(
        "devices", "import", str(site.box("cam-dd-08") / "registration.yaml")
    )
    assert code == 0, out
    new_box = site.device("cam-dd-08")

    code, out = site.broker_config()  # written, not read yet
    assert code == 0, out
    assert "5 device(s): 3 with a password" in out
    assert "a running broker reads them when reloaded: add --reload" in out
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
        asyncio.run(connect(new_box))

    # The broker wrote its pid where broker-config said, in its data folder by default.
    pid_file = site.files / "broker-data" / "mosquitto.pid"
    pid = site.broker.process.pid
    assert pid_file.read_text() == str(pid)
    # A broker running another config would not read these files: it is not signalled.
    with pytest.raises(BrokerReloadError, match=f"process {pid} .* is not a mosquitto running"):
        reload_broker(site.config, pid_file)
    log = site.work / "mosquitto.log"
    assert "Reloading config." not in log.read_text()

    async def across_the_reload() -> list[tuple[str, bytes]]:
        # Connected before the reload, the collector and an old box keep their sessions.
        async with (
            aiomqtt.Client(**site.collector().client_kwargs()) as collector,
            aiomqtt.Client(**site.device("cam-dd-07").client_kwargs()) as old_box,
        ):
            await collector.subscribe("pq/v1/+/+/status", qos=1)
            code, out = await asyncio.to_thread(site.broker_config, "--reload")
            assert code == 0, out
            assert f"sent SIGHUP to mosquitto (pid {pid}, from {pid_file})" in out
            await admitted(new_box)
            async with aiomqtt.Client(**new_box.client_kwargs(), timeout=5) as added:
                await added.publish(topic("cam-dd-08", "status"), b"new", qos=1)
                await added.publish(topic("cam-dd-07", "status"), b"not its own", qos=1)
            await old_box.publish(topic("cam-dd-07", "status"), b"old", qos=1)
            return await receive(collector, 2)

    assert asyncio.run(across_the_reload()) == [
        (topic("cam-dd-08", "status"), b"new"),  # admitted, and confined by its ACL
        (topic("cam-dd-07", "status"), b"old"),
    ]
    assert log.read_text().count("Reloading config.") == 1
