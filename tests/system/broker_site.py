"""A site as the operations center sets it up: a site CA and the broker's certificate, a
device CA (`collector devices ca`), boxes provisioned with passwords and certificates,
imported into the registry, and a real Mosquitto on the configuration `collector
broker-config` writes, run as Debian's unprivileged `mosquitto` user as on a broker host.

The broker's files live in a folder of their own under /tmp, open to that user the way an
operator opens them (the folder traversable, secrets 0640 to the `mosquitto` group):
pytest's own temporary folders are closed to it, and pytest closes their parent again
whenever another session starts.
"""

import asyncio
import grp
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
import yaml

from edge_agent.config import load_agent
from iotruntime.certificates import Issued, create_ca, issue_server
from iotruntime.connection import BrokerSettings
from testbed.processes import run_cli
from testbed.servers import MOSQUITTO, Mosquitto
from testbed.waiting import free_port

BROKER_USER = "mosquitto"
SITE = "duong-dong"
PASSWORD_BOXES = {"cam-dd-07": "camera_pole", "ap-dd-03": "wifi_ap"}
CERTIFICATE_BOXES = {"air-dd-01": "air", "noise-dd-04": "noise"}
CONSOLE = "police-1"


@dataclass
class Site:
    work: Path  # the test's own folder: boxes, registry, logs
    files: Path  # what the broker reads, open to its user
    port: int  # boxes with passwords, consoles
    cert_port: int  # boxes with certificates
    center_port: int  # the collectors
    site_ca: Issued
    device_ca: Issued
    config: Path  # the collector's, on the collectors' listener
    broker: Mosquitto | None = None

    @property
    def broker_dir(self) -> Path:
        return self.files / "broker"

    @property
    def crl(self) -> Path:
        return self.files / "devices.crl"

    def log_mark(self) -> int:
        """Where the broker's log ends now, for `log_since`."""
        return (self.work / "mosquitto.log").stat().st_size

    def log_since(self, mark: int) -> str:
        """What the broker logged after `mark`: a test sharing the site with others reads
        what it caused, not what they did."""
        return (self.work / "mosquitto.log").read_bytes()[mark:].decode(errors="replace")

    def box(self, device: str) -> Path:
        return self.work / device

    def device(self, device: str) -> BrokerSettings:
        return load_agent(self.box(device) / "agent.yaml").config.broker

    def collector(self, username: str = "collector") -> BrokerSettings:
        return BrokerSettings(
            host="127.0.0.1",
            port=self.center_port,
            username=username,
            password_file=self.broker_dir / f"{username}.password",
            tls={"ca_file": self.files / "ca.crt"},
        )

    def provision(self, device: str, kind: str, *extra: str) -> tuple[int, str]:
        certificate = ("--device-ca", str(self.files / "device-ca.crt"))
        if "--device-ca-key" in extra:
            extra = (*certificate, *extra)
        port = self.cert_port if "--device-ca-key" in extra else self.port
        result = run_cli(
            "edge-agent", "provision",
            "--device", device, "--site", SITE, "--kind", kind,
            "--name", f"{device} pole", "--lat", "10.2149", "--lon", "103.9588",
            "--broker-host", "127.0.0.1", "--broker-port", str(port),
            "--ca", str(self.files / "ca.crt"), "--out", str(self.box(device)), *extra,
        )  # fmt: skip
        return result.returncode, " ".join((result.stdout + result.stderr).split())

    def collector_cli(self, *args: str) -> tuple[int, str]:
        result = run_cli("collector", *args, "-c", str(self.config))
        return result.returncode, " ".join((result.stdout + result.stderr).split())

    def broker_config(self, *extra: str) -> tuple[int, str]:
        return self.collector_cli(
            "broker-config", "--out", str(self.broker_dir),
            "--ca", str(self.files / "ca.crt"), "--cert", str(self.files / "server.crt"),
            "--key", str(self.files / "server.key"),
            "--device-ca", str(self.files / "device-ca.crt"),
            "--port", str(self.port), "--cert-port", str(self.cert_port),
            "--center-port", str(self.center_port),
            "--persistence", str(self.files / "broker-data"),
            "--console-user", CONSOLE, "--group", BROKER_USER, *extra,
        )  # fmt: skip

    def device_ca_options(self) -> tuple[str, ...]:
        return (
            "--device-ca", str(self.files / "device-ca.crt"),
            "--device-ca-key", str(self.files / "device-ca.key"),
        )  # fmt: skip


def _readable_by_broker(path: Path, data: bytes, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        os.chown(path, -1, grp.getgrnam(BROKER_USER).gr_gid)
        path.chmod(0o640)
    else:
        path.chmod(0o644)


def build_site(work: Path, files: Path) -> Site:
    """Provision the boxes, register them and write the broker's configuration; the
    broker is not started."""
    if not MOSQUITTO.exists():
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    if os.geteuid() != 0:
        pytest.fail("these tests start Mosquitto as the mosquitto user, which takes root")
    files.chmod(0o711)  # the broker's user may reach its files, not list them
    site_ca = create_ca("Phu Quoc site CA")
    made = run_cli("collector", "devices", "ca", "--out", str(files))  # as the center makes it
    assert made.returncode == 0, made.stdout + made.stderr
    device_ca = Issued(
        (files / "device-ca.crt").read_bytes(), (files / "device-ca.key").read_bytes()
    )
    server = issue_server(site_ca, "127.0.0.1")
    _readable_by_broker(files / "ca.crt", site_ca.cert_pem)
    (files / "ca.key").write_bytes(site_ca.key_pem)
    (files / "ca.key").chmod(0o600)
    _readable_by_broker(files / "server.crt", server.cert_pem)
    _readable_by_broker(files / "server.key", server.key_pem, secret=True)
    (files / "broker-data").mkdir()
    shutil.chown(files / "broker-data", BROKER_USER, BROKER_USER)
    config = work / "collector.yaml"
    ports = free_port(), free_port(), free_port()
    site = Site(work, files, *ports, site_ca, device_ca, config)
    config.write_text(
        yaml.safe_dump(
            {
                "broker": site.collector().model_dump(mode="json", exclude_defaults=True),
                "store": {"kind": "sqlite", "path": str(work / "store.sqlite")},
                "registry": {"path": str(work / "devices.sqlite")},
                "ingest": {"client_id": "collector", "commit_process": False},
            }
        )
    )
    for device, kind in PASSWORD_BOXES.items():
        code, out = site.provision(device, kind)
        assert code == 0, out
    for device, kind in CERTIFICATE_BOXES.items():
        code, out = site.provision(device, kind, "--device-ca-key", str(files / "device-ca.key"))
        assert code == 0, out
    bundles = [
        str(site.box(d) / "registration.yaml") for d in (*PASSWORD_BOXES, *CERTIFICATE_BOXES)
    ]
    code, out = site.collector_cli("devices", "import", *bundles)
    assert code == 0, out
    code, out = site.broker_config()
    assert code == 0, out
    assert "4 device(s): 2 with a password, 2 with a certificate; 0 revoked" in out
    return site


def start_broker(site: Site) -> Mosquitto:
    ports = (site.port, site.cert_port, site.center_port)
    site.broker = Mosquitto(
        site.work, config=site.broker_dir / "mosquitto.conf", ports=ports, user=BROKER_USER
    )
    site.broker.start()
    return site.broker


def broker_files() -> Path:
    return Path(tempfile.mkdtemp(prefix="pq-broker-"))


def running_site(work: Path) -> Iterator[Site]:
    """A fixture's body: the site built, its broker running; all of it gone after.

    Building it is about ten seconds of commands (`collector devices ca`, four
    provisionings, an import, broker-config) and a broker start, so a module's tests
    share one where they leave it as they found it: a test that changes the registry puts
    it back, one that changes a box works on a copy, one that restarts the broker or
    revokes a box has a site of its own."""
    files = broker_files()
    site = None
    try:
        site = build_site(work, files)
        start_broker(site)
        yield site
    finally:
        if site is not None and site.broker is not None:
            site.broker.stop()
        shutil.rmtree(files)


async def exchange(
    device: BrokerSettings, collector: BrokerSettings, topics: list[str]
) -> set[str]:
    """Publish one message on each topic as `device`; the topics the collector received.
    Not counted: retained messages, which the broker hands a new subscriber from before
    it subscribed (an agent's status, in a site a module's tests share); what `device`
    publishes here comes live."""
    received: set[str] = set()
    async with aiomqtt.Client(**collector.client_kwargs()) as watcher:
        await watcher.subscribe("pq/v1/#", qos=1)
        async with aiomqtt.Client(**device.client_kwargs()) as box:
            for topic in topics:
                await box.publish(topic, b"{}", qos=1)
        try:
            async with asyncio.timeout(3):
                async for message in watcher.messages:
                    if not message.retain:
                        received.add(str(message.topic))
        except TimeoutError:
            pass
    return received


def check(config: Path) -> tuple[int, dict[str, tuple[str, str]]]:
    """`edge-agent check` on a box: its exit status and each line's result and detail."""
    result = run_cli("edge-agent", "check", "-c", str(config), timeout_s=120)
    lines = {}
    for row in result.stdout.splitlines():
        cells = [c.strip() for c in row.split("│")[1:-1]]
        if len(cells) == 3 and cells[1] in ("pass", "FAIL"):
            lines[cells[0]] = (cells[1], cells[2])
    return result.returncode, lines
