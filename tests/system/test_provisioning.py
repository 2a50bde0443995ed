"""From a bare box to a device the broker admits, and confines: `edge-agent provision` for
boxes with a password and with a client certificate from the device CA, `collector devices
import` and `collector broker-config`, then a real Mosquitto started on the generated TLS
configuration, password files and ACLs, as Debian's `mosquitto` user."""

import asyncio
import shutil
import subprocess
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
import yaml

from edge_agent.config import load_agent
from edge_agent.status import read_status
from iotruntime.certificates import create_ca
from iotruntime.connection import BrokerSettings
from testbed.plate_scenes import write_video
from testbed.processes import BIN, run_cli
from testbed.waiting import free_port, wait_until
from tests.system.broker_site import Site, check, exchange, running_site

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site CA, a device CA, four provisioned boxes (cam-dd-07 and ap-dd-03 with
    passwords, air-dd-01 and noise-dd-04 with certificates) and the broker the registry
    configures; one for the module, whose tests leave it as they found it."""
    yield from running_site(tmp_path_factory.mktemp("site"))


def bench_box(site: Site, device: str, tmp_path: Path) -> Path:
    """A copy of a provisioned box, for a test that adds to it (a bench config, the
    agent's state): the site's box stays as provisioning left it. Its config's paths are
    relative to it, so the copy is the same box."""
    return Path(shutil.copytree(site.box(device), tmp_path / device))


def test_each_device_publishes_under_its_own_topics_only(site):
    collector = site.collector()
    own, other = "pq/v1/duong-dong/cam-dd-07/telemetry", "pq/v1/duong-dong/air-dd-01/telemetry"
    command = "pq/v1/duong-dong/air-dd-01/cmd/reload_config"  # only the collector's to send
    by_password = site.device("cam-dd-07")
    assert asyncio.run(exchange(by_password, collector, [own, other, command])) == {own}
    by_certificate = site.device("air-dd-01")
    assert by_certificate.username is None  # the certificate names it
    assert asyncio.run(exchange(by_certificate, collector, [other, own])) == {other}


def test_a_wrong_password_and_a_wrong_ca_are_refused(site, tmp_path):
    settings = site.device("cam-dd-07")
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
    cam, air = site.box("cam-dd-07"), site.box("air-dd-01")
    before = {box: {p.name: p.read_bytes() for p in box.iterdir()} for box in (cam, air)}
    code, out = site.provision("cam-dd-07", "camera_pole")
    assert code == 0, out
    key = str(site.files / "device-ca.key")
    code, out = site.provision("air-dd-01", "air", "--device-ca-key", key)
    assert code == 0, out
    assert "nothing to change" in out
    assert {box: {p.name: p.read_bytes() for p in box.iterdir()} for box in (cam, air)} == before
    moved = run_cli(
        "edge-agent", "provision",
        "--device", "cam-dd-07", "--site", "duong-dong", "--kind", "camera_pole",
        "--name", "cam-dd-07 pole", "--lat", "10.2150", "--lon", "103.9588",
        "--broker-host", "127.0.0.1", "--broker-port", str(site.port),
        "--ca", str(site.files / "ca.crt"), "--out", str(cam), "--dry-run",
    )  # fmt: skip
    assert moved.returncode == 0, moved.stdout
    lines = " ".join(moved.stdout.split())
    assert "agent.yaml │ update │ device.location.lat" in lines
    assert "broker-password │ keep" in lines
    assert "dry run: nothing written" in lines
    assert {p.name: p.read_bytes() for p in cam.iterdir()} == before[cam]
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


def test_check_passes_on_a_good_box_and_names_each_broken_line(site, simulated_device, tmp_path):
    cam, air = bench_box(site, "cam-dd-07", tmp_path), bench_box(site, "air-dd-01", tmp_path)
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
    site, simulated_device, processes, tmp_path
):
    air = bench_box(site, "air-dd-01", tmp_path)
    sensor = simulated_device("1:pq-sim-air")
    video = tmp_path / "street.avi"
    write_video(str(video), [np.full((240, 320, 3), 90, np.uint8)] * 5)
    bench = on_the_bench(air, sensor, str(video))
    agent = processes.start("agent", "edge-agent", "run", "-c", str(bench))
    wait_until(lambda: read_status(air / "state"), 30, "the agent running")
    first_boot = read_status(air / "state").boot_id

    def command(*args: str) -> tuple[int, str]:
        return site.collector_cli("command", "air-dd-01", *args)

    code, out = command("report_status")
    assert code == 0, out
    assert '"device": "air-dd-01"' in out
    code, out = command("read_sensor", "--source", "aqms")
    assert (code, "air-dd-01 ok: read_sensor" in out, "pm10" in out) == (0, True, True)
    code, out = command("read_sensor", "--source", "nope")
    assert code == 1
    assert "no source 'nope'; this box has: aqms" in out

    wait_until(lambda: read_status(air / "state").broker_connected, 15, "status: connected")
    code, lines = check(bench)  # beside the running agent: its session, not a second one
    assert code == 0, sorted(lines.items())
    assert "the running agent" in lines["broker"][1]
    assert "not tried while the agent runs" in lines["publish"][1]
    code, out = command("report_status")
    assert code == 0, out  # the agent kept its session

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
    # Done with the agent. Stopped cleanly it would wait 5 s for the collector to confirm
    # what it sent last, and no collector runs here.
    agent.kill()
    agent.wait()


def test_provision_asks_for_what_the_flags_leave_out(tmp_path):
    (tmp_path / "ca.crt").write_bytes(create_ca("Phu Quoc site CA").cert_pem)
    out = tmp_path / "box"
    answers = (
        f"wifi-at-03\nan-thoi\nwifi_ap\nAn Thoi pier AP\nbroker.ops.example\n{tmp_path}/ca.crt\n"
    )
    result = subprocess.run(
        [str(BIN / "edge-agent"), "provision", "--out", str(out)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for prompt in (
        "device id (e.g. air-dd-01):",
        "site (e.g. duong-dong):",
        "box type (air,",
        "pole or station name:",
        "broker host:",
        "site CA certificate (PEM file):",
    ):
        assert prompt in result.stdout
    device = load_agent(out / "agent.yaml").config.device
    assert (device.id, device.site, device.kind, device.name) == (
        "wifi-at-03", "an-thoi", "wifi_ap", "An Thoi pier AP",
    )  # fmt: skip
    assert load_agent(out / "agent.yaml").config.broker.host == "broker.ops.example"
