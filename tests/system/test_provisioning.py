"""From a bare box to a device the broker admits, and confines: `edge-agent provision` for
a box with a password and one with a client certificate, `collector devices import` and
`collector broker-config`, then a real Mosquitto started on the generated TLS
configuration, password file and ACL."""

import asyncio
import subprocess
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
import yaml

from edge_agent.config import load_agent
from edge_agent.status import read_status
from iotruntime.certificates import create_ca, issue_server
from iotruntime.connection import BrokerSettings
from testbed.plate_scenes import write_video
from testbed.processes import BIN, run_cli
from testbed.servers import MOSQUITTO
from testbed.waiting import free_port, wait_for_port, wait_until

pytestmark = pytest.mark.servers


def provision(tmp_path: Path, device: str, kind: str, port: int, *extra: str) -> Path:
    out = tmp_path / device
    result = run_cli(
        "edge-agent", "provision",
        "--device", device, "--site", "duong-dong", "--kind", kind,
        "--name", f"{device} pole", "--lat", "10.2149", "--lon", "103.9588",
        "--broker-host", "127.0.0.1", "--broker-port", str(port),
        "--ca", str(tmp_path / "ca.crt"), "--out", str(out), *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture
def site(tmp_path):
    """A site CA, two provisioned boxes, and the broker the registry configures."""
    ca = create_ca("Phu Quoc site CA")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "ca.key").write_bytes(ca.key_pem)
    server = issue_server(ca, "127.0.0.1")
    (tmp_path / "server.crt").write_bytes(server.cert_pem)
    (tmp_path / "server.key").write_bytes(server.key_pem)
    port, cert_port = free_port(), free_port()
    cam = provision(tmp_path, "cam-dd-07", "camera_pole", port)
    air = provision(tmp_path, "air-dd-01", "air", cert_port, "--ca-key", str(tmp_path / "ca.key"))
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"registry": {"path": str(tmp_path / "devices.sqlite")}}))
    c = ("-c", str(config))
    imported = run_cli(
        "collector", "devices", "import", *c, str(cam / "registration.yaml"),
        str(air / "registration.yaml"),
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout
    broker_dir = tmp_path / "broker"
    written = run_cli(
        "collector", "broker-config", *c, "--out", str(broker_dir),
        "--ca", str(tmp_path / "ca.crt"), "--cert", str(tmp_path / "server.crt"),
        "--key", str(tmp_path / "server.key"), "--port", str(port),
        "--cert-port", str(cert_port), "--persistence", str(tmp_path / "broker-data"),
    )  # fmt: skip
    assert written.returncode == 0, written.stdout
    assert "2 device(s): 1 with a password, 1 with a certificate" in written.stdout
    (tmp_path / "broker-data").mkdir()
    conf = broker_dir / "mosquitto.conf"
    # The tests run as root; Mosquitto would otherwise drop to a user that cannot read
    # the test's files. A broker host runs it as its own user.
    conf.write_text(conf.read_text() + "user root\n")
    log = (tmp_path / "mosquitto.log").open("wb")
    broker = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=log, stderr=log)
    wait_for_port(port)
    wait_for_port(cert_port)
    yield tmp_path, cam, air, broker_dir, port
    broker.terminate()
    broker.wait(10)


async def exchange(
    device: BrokerSettings, collector: BrokerSettings, topics: list[str]
) -> set[str]:
    """Publish one message on each topic as `device`; the topics the collector received."""
    received: set[str] = set()
    async with aiomqtt.Client(**collector.client_kwargs()) as watcher:
        await watcher.subscribe("pq/v1/#", qos=1)
        async with aiomqtt.Client(**device.client_kwargs()) as box:
            for topic in topics:
                await box.publish(topic, b"{}", qos=1)
        try:
            async with asyncio.timeout(3):
                async for message in watcher.messages:
                    received.add(str(message.topic))
        except TimeoutError:
            pass
    return received


def test_each_device_publishes_under_its_own_topics_only(site):
    tmp_path, cam, air, broker_dir, port = site
    collector = BrokerSettings(
        host="127.0.0.1",
        port=port,
        username="collector",
        password_file=broker_dir / "collector.password",
        tls={"ca_file": tmp_path / "ca.crt"},
    )
    own, other = "pq/v1/duong-dong/cam-dd-07/telemetry", "pq/v1/duong-dong/air-dd-01/telemetry"
    command = "pq/v1/duong-dong/air-dd-01/cmd/reload_config"  # only the collector's to send
    by_password = load_agent(cam / "agent.yaml").config.broker
    assert asyncio.run(exchange(by_password, collector, [own, other, command])) == {own}
    by_certificate = load_agent(air / "agent.yaml").config.broker
    assert by_certificate.username is None  # the certificate names it
    assert asyncio.run(exchange(by_certificate, collector, [other, own])) == {other}


def test_a_wrong_password_and_a_wrong_ca_are_refused(site):
    tmp_path, cam, _, _, _ = site
    settings = load_agent(cam / "agent.yaml").config.broker
    (tmp_path / "wrong-password").write_text("not-the-password\n")
    wrong = settings.model_copy(update={"password_file": tmp_path / "wrong-password"})

    async def connect(broker: BrokerSettings) -> None:
        async with aiomqtt.Client(**broker.client_kwargs()):
            pass

    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
        asyncio.run(connect(wrong))
    other_ca = create_ca("someone else's CA")
    (tmp_path / "other-ca.crt").write_bytes(other_ca.cert_pem)
    tls = settings.tls.model_copy(update={"ca_file": tmp_path / "other-ca.crt"})
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(connect(settings.model_copy(update={"tls": tls})))


def test_provisioning_again_changes_nothing_and_says_what_a_change_would_do(site):
    tmp_path, cam, _, _, port = site
    before = {p.name: p.read_bytes() for p in cam.iterdir()}
    again = provision(tmp_path, "cam-dd-07", "camera_pole", port)
    assert {p.name: p.read_bytes() for p in again.iterdir()} == before
    moved = run_cli(
        "edge-agent", "provision",
        "--device", "cam-dd-07", "--site", "duong-dong", "--kind", "camera_pole",
        "--name", "cam-dd-07 pole", "--lat", "10.2150", "--lon", "103.9588",
        "--broker-host", "127.0.0.1", "--broker-port", str(port),
        "--ca", str(tmp_path / "ca.crt"), "--out", str(cam), "--dry-run",
    )  # fmt: skip
    assert moved.returncode == 0, moved.stdout
    lines = " ".join(moved.stdout.split())
    assert "agent.yaml │ update │ device.location.lat" in lines
    assert "broker-password │ keep" in lines
    assert "dry run: nothing written" in lines
    assert {p.name: p.read_bytes() for p in cam.iterdir()} == before
    assert (cam / "broker-password").stat().st_mode & 0o777 == 0o600


def on_the_bench(box: Path, sensor_port: int, camera_url: str, **broker: object) -> Path:
    """The provisioned config with the box's sensor and camera as they are on this bench."""
    config = yaml.safe_load((box / "agent.yaml").read_text())
    config["buses"] = [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": sensor_port}]
    config["sources"] = [
        {"name": "aqms", "type": "modbus", "bus": "gw", "unit": 1, "profile": "pq-sim-air"}
    ]
    config["cameras"] = [{"name": "north", "url": camera_url}]
    config["broker"] |= broker
    config["state_dir"] = str(box / "state")
    path = box / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check(config: Path) -> tuple[int, dict[str, tuple[str, str]]]:
    result = run_cli("edge-agent", "check", "-c", str(config), timeout_s=120)
    lines = {}
    for row in result.stdout.splitlines():
        cells = [c.strip() for c in row.split("│")[1:-1]]
        if len(cells) == 3 and cells[1] in ("pass", "FAIL"):
            lines[cells[0]] = (cells[1], cells[2])
    return result.returncode, lines


def test_check_passes_on_a_good_box_and_names_each_broken_line(site, simulated_device):
    tmp_path, cam, air, _, _ = site
    sensor = simulated_device("1:pq-sim-air")
    video = tmp_path / "street.avi"
    write_video(str(video), [np.full((240, 320, 3), 90, np.uint8)] * 5)

    code, lines = check(on_the_bench(air, sensor, str(video)))
    assert code == 0, lines
    assert set(lines) == {"config", "broker", "publish", "sensor aqms", "camera north"}
    assert all(result == "pass" for result, _ in lines.values())
    assert "320x240 frame" in lines["camera north"][1]

    (tmp_path / "wrong").write_text("not-the-password\n")
    dead_sensor, dead_camera = free_port(), f"http://127.0.0.1:{free_port()}/video.mjpg"
    code, lines = check(
        on_the_bench(cam, dead_sensor, dead_camera, password_file=str(tmp_path / "wrong"))
    )
    assert code == 1
    assert {what for what, (result, _) in lines.items() if result == "FAIL"} == {
        "broker",
        "publish",
        "sensor aqms",
        "camera north",
    }
    assert "refused cam-dd-07: bad user name or password" in lines["broker"][1]
    assert lines["config"][0] == "pass"

    (tmp_path / "other-ca.crt").write_bytes(create_ca("someone else's CA").cert_pem)
    code, lines = check(
        on_the_bench(cam, sensor, str(video), tls={"ca_file": str(tmp_path / "other-ca.crt")})
    )
    assert code == 1
    assert lines["broker"][0] == "FAIL"
    assert "TLS: the broker's certificate" in lines["broker"][1]
    assert lines["sensor aqms"][0] == "pass"


def test_commands_from_the_collector_are_answered_by_the_running_agent(
    site, simulated_device, processes
):
    tmp_path, _, air, broker_dir, port = site
    sensor = simulated_device("1:pq-sim-air")
    video = tmp_path / "street.avi"
    write_video(str(video), [np.full((240, 320, 3), 90, np.uint8)] * 5)
    bench = on_the_bench(air, sensor, str(video))
    processes.start("agent", "edge-agent", "run", "-c", str(bench))
    wait_until(lambda: read_status(air / "state"), 30, "the agent running")
    first_boot = read_status(air / "state").boot_id
    config = tmp_path / "collector-commands.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "broker": {
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "collector",
                    "password_file": str(broker_dir / "collector.password"),
                    "tls": {"ca_file": str(tmp_path / "ca.crt")},
                },
                "registry": {"path": str(tmp_path / "devices.sqlite")},
            }
        )
    )

    def command(*args: str) -> tuple[int, str]:
        result = run_cli("collector", "command", "-c", str(config), "air-dd-01", *args)
        return result.returncode, " ".join((result.stdout + result.stderr).split())

    code, out = command("report_status")
    assert code == 0, out
    assert '"device": "air-dd-01"' in out
    code, out = command("read_sensor", "--source", "aqms")
    assert (code, "air-dd-01 ok: read_sensor" in out, "pm10" in out) == (0, True, True)
    code, out = command("read_sensor", "--source", "nope")
    assert code == 1
    assert "no source 'nope'; this box has: aqms" in out

    bench.write_text(bench.read_text().replace("interval_s: 60", "interval_s: oops"))
    code, out = command("reload_config")
    assert code == 1
    assert "config kept, the new one does not load" in out
    bench.write_text(bench.read_text().replace("interval_s: oops", "interval_s: 30"))
    code, out = command("reload_config")
    assert code == 0, out
    assert "loads; restarting with it" in out

    def restarted() -> bool:
        current = read_status(air / "state")
        return current is not None and current.boot_id != first_boot

    wait_until(restarted, 30, "the agent restarted")
    code, out = command("report_status")
    assert code == 0, out


def test_provision_asks_for_what_the_flags_leave_out(tmp_path):
    (tmp_path / "ca.crt").write_bytes(create_ca("Phu Quoc site CA").cert_pem)
    out = tmp_path / "box"
    answers = "wifi-at-03\nan-thoi\nwifi_ap\nAn Thoi pier AP\nbroker.ops.example\n"
    result = subprocess.run(
        [str(BIN / "edge-agent"), "provision", "--ca", str(tmp_path / "ca.crt"), "--out", str(out)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for prompt in ("device id:", "site:", "box type (air,", "pole or station name:", "host:"):
        assert prompt in result.stdout
    device = load_agent(out / "agent.yaml").config.device
    assert (device.id, device.site, device.kind, device.name) == (
        "wifi-at-03", "an-thoi", "wifi_ap", "An Thoi pier AP",
    )  # fmt: skip
    assert load_agent(out / "agent.yaml").config.broker.host == "broker.ops.example"
