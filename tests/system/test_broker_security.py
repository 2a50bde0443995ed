"""The holes of issue #23, each tried against a real Mosquitto running the configuration
`collector broker-config` writes, as Debian's `mosquitto` user, and the running collector
where it matters: each attack is refused, and the legitimate path still works.

1. A bundle naming the collector's broker user (or a console's) is refused on import, a
   registry row that does is refused by broker-config, and the collector's password is
   still its own.
2. A device credential asking for the collector's client id, or another device's, gets
   its own: the collector's session and the other box's are not disturbed.
3. Only camera poles may publish plate reads.
4. The device CA, whose key technicians carry, cannot make a collector, and a revoked box
   is refused once the broker restarts, while the others connect.
"""

import asyncio
import datetime
import json
import sqlite3
from datetime import UTC, timedelta

import aiomqtt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.config import load_collector
from collector.stores import open_store
from iotruntime.broker_access import password_entry
from iotruntime.certificates import Issued
from iotruntime.connection import BrokerSettings
from iotwire import encode
from iotwire.messages import ClockSync, Reading, Sample, Telemetry
from testbed.waiting import wait_until
from tests.helpers import plate_read
from tests.system.broker_site import CONSOLE, SITE, Site, exchange, running_site

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One site for the tests that leave it as they found it (the first puts back the
    registry row it adds); the broker's log is shared, so each reads its own part."""
    yield from running_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def own_site(tmp_path):
    """A site of its own, for the test that revokes boxes and restarts the broker."""
    yield from running_site(tmp_path)


def topic(device: str, channel: str) -> str:
    return f"pq/v1/{SITE}/{device}/{channel}"


def telemetry(device: str, seq: int) -> bytes:
    sample = Sample(
        sensor="aqms",
        ts=datetime.datetime.now(UTC) - timedelta(minutes=200 - seq),
        readings=(Reading(parameter="pm10", value=float(seq), unit="µg/m³"),),
    )
    return encode(Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,)))


def with_password(
    settings: BrokerSettings, username: str, password: str, tmp_path
) -> BrokerSettings:
    secret = tmp_path / f"{username}-{len(password)}.secret"
    secret.write_text(password + "\n")
    return settings.model_copy(update={"username": username, "password_file": secret})


def with_certificate(site: Site, issued: Issued, name: str, tmp_path) -> BrokerSettings:
    """A client on the certificate listener presenting `issued`."""
    (tmp_path / f"{name}.crt").write_bytes(issued.cert_pem)
    (tmp_path / f"{name}.key").write_bytes(issued.key_pem)
    return BrokerSettings(
        host="127.0.0.1",
        port=site.cert_port,
        tls={
            "ca_file": site.files / "ca.crt",
            "cert_file": tmp_path / f"{name}.crt",
            "key_file": tmp_path / f"{name}.key",
        },
    )


def forge(ca: Issued, common_name: str) -> Issued:
    """A client certificate made with a CA's key as anyone holding it could (openssl, not
    our provisioning, which refuses reserved names)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem)


async def connect(settings: BrokerSettings) -> None:
    async with aiomqtt.Client(**settings.client_kwargs(), timeout=5):
        pass


async def collect(client: aiomqtt.Client, into: list[str], seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            async for message in client.messages:
                into.append(str(message.topic))
    except TimeoutError:
        pass


def test_a_bundle_naming_the_collector_is_refused_and_the_collector_keeps_its_own_password(
    site, tmp_path
):
    stolen = "the-attackers-own-password"
    forged = {  # bundle: device, username, why it is refused
        "as-collector": (
            "collector",
            "collector",
            "device: Value error, a name the operations center uses on the broker, not a box's",
        ),
        "user-collector": (
            "cam-dd-99",
            "collector",
            "credential: Value error, username 'collector' is not the box's device id",
        ),
        "as-console": (CONSOLE, CONSOLE, f"device: '{CONSOLE}' is a console's name on the broker"),
    }
    for name, (device, username, reason) in forged.items():
        bundle = tmp_path / f"{name}.yaml"
        credential = {"username": username, "password_entry": password_entry(username, stolen)}
        fields = {"device": device, "site": SITE, "kind": "air", "name": "x"}
        bundle.write_text(yaml.safe_dump({**fields, "credential": credential}))
        code, out = site.collector_cli("devices", "import", str(bundle))
        assert code == 1, out
        assert f"{bundle}: {reason}" in out

    # A registry filled before these checks may hold such a row: broker-config names it
    # and writes nothing. (The row goes again after: the module's other tests share the
    # registry.)
    credential = {"username": "collector", "password_entry": password_entry("collector", stolen)}
    registry = site.work / "devices.sqlite"
    with sqlite3.connect(registry) as db:
        db.execute(
            "INSERT INTO devices (device, site, kind, name, credential, imported)"
            " VALUES ('cam-dd-99', ?, 'camera_pole', 'x', ?, '2026-01-01T00:00:00+00:00')",
            (SITE, json.dumps(credential)),
        )
    try:
        before = {p.name: p.read_bytes() for p in site.broker_dir.iterdir()}
        code, out = site.broker_config()
        assert code == 2, out
        assert "cam-dd-99: signs in as 'collector', not as itself" in out
        assert {p.name: p.read_bytes() for p in site.broker_dir.iterdir()} == before
    finally:
        with sqlite3.connect(registry) as db:
            db.execute("DELETE FROM devices WHERE device = 'cam-dd-99'")

    # On the broker, the attacker's password opens nothing; the collector's still works.
    for port in (site.port, site.center_port):
        attacker = with_password(site.collector(), "collector", stolen, tmp_path)
        with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
            asyncio.run(connect(attacker.model_copy(update={"port": port})))
    own = topic("cam-dd-07", "telemetry")
    assert asyncio.run(exchange(site.device("cam-dd-07"), site.collector(), [own])) == {own}


def test_a_device_asking_for_the_collectors_or_another_devices_client_id_disturbs_neither(
    site, processes
):
    mark = site.log_mark()
    processes.start("collector", "collector", "run", "-c", str(site.config))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 30, "collector subscribed")
    sent = 80
    cam = site.device("cam-dd-07")
    intruders = [
        (site.device("ap-dd-03"), "collector", True),
        (site.device("air-dd-01"), "collector", False),
        (site.device("ap-dd-03"), "cam-dd-07", False),
        (site.device("noise-dd-04"), "collector", True),
        (site.device("ap-dd-03"), "collector", False),
        (site.device("air-dd-01"), "cam-dd-07", True),
    ]

    async def intrude() -> None:
        """Each credential in turn claims a client id not its own, with a clean session
        (which would wipe the owner's) or a persistent one (which would take it over)."""
        for settings, identifier, clean in intruders:
            async with aiomqtt.Client(
                **settings.client_kwargs(), identifier=identifier, clean_session=clean
            ) as intruder:
                await intruder.subscribe("pq/v1/#", qos=1)
                await asyncio.sleep(0.4)

    async def publish_through_it() -> None:
        # One session for the whole run: were it taken over, a publish would fail.
        async with aiomqtt.Client(
            **cam.client_kwargs(), identifier="cam-dd-07", clean_session=False
        ) as box:
            intrusions = asyncio.create_task(intrude())
            for seq in range(1, sent + 1):
                await box.publish(
                    topic("cam-dd-07", "telemetry"), telemetry("cam-dd-07", seq), qos=1
                )
                await asyncio.sleep(0.04)
            await intrusions

    asyncio.run(publish_through_it())
    # `collector command` connects beside the running collector with the same credential,
    # under a client id of its own (no agent runs here to answer it).
    code, out = site.collector_cli("command", "cam-dd-07", "report_status", "--timeout-s", "1")
    assert (code, "cam-dd-07 did not acknowledge report_status" in out) == (2, True), out
    store = open_store(load_collector(site.config))

    def cam_row():
        return next((d for d in store.devices() if d.device == "cam-dd-07"), None)

    wait_until(lambda: (row := cam_row()) is not None and row.messages >= sent, 30, "all stored")
    row = cam_row()
    store.close()
    assert (row.messages, row.duplicates, row.gaps) == (sent, 0, 0)
    assert processes.log("collector").count("subscribed to") == 1  # never lost its session
    log = site.log_since(mark)
    # The broker named each intruder after its credential; the collector connected once.
    assert " as ap-dd-03 " in log
    assert " as CN=air-dd-01 " in log
    assert log.count(" as collector ") == 1


def test_only_a_camera_pole_may_publish_plate_reads(site):
    now = datetime.datetime.now(UTC)

    def read(device: str) -> bytes:
        return encode(plate_read(1, ts=now, device=device))

    async def main() -> list[str]:
        received: list[str] = []
        async with aiomqtt.Client(**site.collector().client_kwargs()) as watcher:
            await watcher.subscribe("pq/v1/+/+/plate", qos=1)
            for device in ("air-dd-01", "ap-dd-03", "cam-dd-07"):
                async with aiomqtt.Client(**site.device(device).client_kwargs()) as box:
                    await box.publish(topic(device, "plate"), read(device), qos=1)
            await collect(watcher, received, 3)
        return received

    assert asyncio.run(main()) == [topic("cam-dd-07", "plate")]
    acl = (site.broker_dir / "field.acl").read_text() + (
        site.broker_dir / "certificates.acl"
    ).read_text()
    assert [line for line in acl.splitlines() if line.endswith("/plate")] == [
        f"topic write {topic('cam-dd-07', 'plate')}"
    ]


def test_a_certificate_from_the_device_ca_gets_no_collector_rights(site, tmp_path):
    # The site CA's key, which technicians carried before the device CA, and the device
    # CA's, which they carry now, each sign a certificate claiming to be the collector.
    from_site_ca = with_certificate(site, forge(site.site_ca, "collector"), "site-ca", tmp_path)
    from_device_ca = with_certificate(
        site, forge(site.device_ca, "collector"), "device-ca", tmp_path
    )
    mark = site.log_mark()
    with pytest.raises(aiomqtt.MqttError):
        asyncio.run(connect(from_site_ca))
    # The broker's handshake refused it. Under TLS 1.3 the client may see only the closed
    # socket, whichever alert it was sent, so the broker's log is the witness.
    assert "certificate verify failed" in site.log_since(mark)
    command = topic("air-dd-01", "cmd/reload_config")

    async def main() -> tuple[list[str], list[str], list[str]]:
        impostor_got: list[str] = []
        collector_got: list[str] = []
        box_got: list[str] = []
        async with (
            aiomqtt.Client(**site.collector().client_kwargs(), identifier="collector") as real,
            aiomqtt.Client(**site.device("air-dd-01").client_kwargs()) as box,
        ):
            await real.subscribe("pq/v1/+/+/#", qos=1)
            await box.subscribe(topic("air-dd-01", "cmd/+"), qos=1)
            # The broker lets it in (the device CA signed it) under its subject, with
            # nothing it may read or write: the collector's session stays where it is.
            async with aiomqtt.Client(**from_device_ca.client_kwargs()) as impostor:
                await impostor.subscribe("pq/v1/#", qos=1)
                await impostor.publish(command, b"{}", qos=1)
                async with aiomqtt.Client(**site.device("cam-dd-07").client_kwargs()) as cam:
                    await cam.publish(topic("cam-dd-07", "telemetry"), b"{}", qos=1)
                await collect(impostor, impostor_got, 2)
            await collect(real, collector_got, 1)
            await collect(box, box_got, 1)
        return impostor_got, collector_got, box_got

    impostor_got, collector_got, box_got = asyncio.run(main())
    assert impostor_got == []
    assert box_got == []  # no command reached the box
    assert collector_got == [topic("cam-dd-07", "telemetry")]  # still connected, still reading

    # Provisioning signs no such certificate, and no device certificate from the site CA.
    code, out = site.provision(
        "collector", "air", "--device-ca-key", str(site.files / "device-ca.key")
    )
    assert code == 2
    assert "'collector' is the operations center's name on the broker" in out
    code, out = site.provision(
        "air-dd-02", "air", "--device-ca", str(site.files / "ca.crt"),
        "--device-ca-key", str(site.files / "ca.key"),
    )  # fmt: skip
    assert code == 2
    assert "is the site CA: device certificates come from the device CA" in out


def test_a_revoked_box_is_refused_once_the_broker_restarts_and_the_others_still_connect(
    own_site, caplog
):
    site = own_site
    code, out = site.collector_cli("devices", "revoke", "air-dd-01")
    assert code == 2
    assert "air-dd-01 has a certificate: give --device-ca, --device-ca-key and --crl" in out
    code, out = site.collector_cli(
        "devices", "revoke", "air-dd-01", *site.device_ca_options(), "--crl", str(site.crl)
    )
    assert code == 0, out
    assert "1 revoked certificate(s)" in out
    code, out = site.collector_cli("devices", "revoke", "ap-dd-03")
    assert code == 0, out

    # The broker's files without the CRL would let the revoked certificate in: refused.
    code, out = site.broker_config()
    assert code == 2
    assert "revoked certificates need --crl" in out
    code, out = site.broker_config("--crl", str(site.crl))
    assert code == 0, out
    assert "2 device(s): 1 with a password, 1 with a certificate; 2 revoked" in out
    assert "ap-dd-03" not in (site.broker_dir / "field.passwords").read_text()
    site.broker.stop()
    site.broker.start()

    mark = site.log_mark()
    with pytest.raises(aiomqtt.MqttError):
        asyncio.run(connect(site.device("air-dd-01")))
    # The handshake refused it. The client may see the revocation alert or, under TLS 1.3
    # and load, only the closed socket; the broker's log is the witness either way.
    assert "ALERT_CERTIFICATE_REVOKED" in caplog.text or (
        "certificate verify failed" in site.log_since(mark)
    )
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
        asyncio.run(connect(site.device("ap-dd-03")))
    collector = site.collector()
    for device in ("noise-dd-04", "cam-dd-07"):
        own = topic(device, "telemetry")
        assert asyncio.run(exchange(site.device(device), collector, [own])) == {own}

    # The revoked credential does not come back with its old bundle.
    code, out = site.collector_cli(
        "devices", "import", str(site.box("air-dd-01") / "registration.yaml")
    )
    assert code == 1
    assert "credential: revoked on" in out
