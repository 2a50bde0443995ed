"""Issue #25: a box of each of the seven kinds provisioned from flags alone (no hand edit)
against simulators of real-model profiles, registered, the broker configured for them,
and `edge-agent check` run on each, as a technician does before leaving the pole; the
access point kind twice, on a Linux AP's interface and beside a managed AP's controller,
a real snmpd, read over SNMP v3."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from testbed.plate_scenes import write_video
from testbed.processes import Processes, run_cli
from testbed.snmpd import Snmpd
from testbed.waiting import free_port, wait_for_port
from tests.edge_agent.sources.test_snmp_ap import VALUES
from tests.system.broker_site import Site, broker_files, build_site, check, start_broker

pytestmark = pytest.mark.servers

# Each kind with the sensors of real models a station of that kind carries.
SENSORS = {
    "air": ["teledyne-t400:1:o3", "delta-ohm-pmsense:2:pm"],
    "domestic_water": ["yosemitech-y532:1:ph", "yosemitech-y511:2:turbidity"],
    "wastewater": ["yosemitech-y550:1:cod", "xylem-magflux:2:flow"],
    "seawater": ["ysi-odo-rtu-ct:1:odo", "yosemitech-y520:2:ec"],
    "noise": ["sonbest-sm7901b:1:slm"],
}


SNMP_BOX = "wifisnmp-k7"


def device_of(kind: str) -> str:
    return f"{kind.replace('_', '')[:8]}-k7"


@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> Iterator[tuple[Site, dict[str, Path]]]:
    """The site, and a box of each kind provisioned, registered and admitted by the
    broker before it starts: the bench configs to check, by kind."""
    work = tmp_path_factory.mktemp("kinds")
    files = broker_files()
    simulators = Processes(work)
    (work / "snmpd").mkdir()
    controller = Snmpd(work / "snmpd", VALUES)
    site = None
    try:
        controller.start()
        site = build_site(work, files)
        boxes = {}
        for kind, sensors in SENSORS.items():
            port = free_port()
            units = [f"{s.split(':')[1]}:{s.split(':')[0]}" for s in sensors]
            simulators.start(f"sim-{kind}", "edge-agent", "simulate", *units, "--port", str(port))
            wait_for_port(port)
            flags = [f for s in sensors for f in ("--sensor", s)]
            code, out = site.provision(
                device_of(kind), kind, *flags, "--modbus-host", "127.0.0.1",
                "--modbus-port", str(port),
            )  # fmt: skip
            assert code == 0, out
            boxes[kind] = site.box(device_of(kind)) / "agent.yaml"
        video = work / "street.avi"
        write_video(str(video), [np.full((240, 320, 3), 90, np.uint8)] * 5)
        code, out = site.provision(
            device_of("camera_pole"), "camera_pole", "--camera", f"north={video}",
            "--device-ca-key", str(files / "device-ca.key"),
        )  # fmt: skip
        assert code == 0, out
        boxes["camera_pole"] = site.box(device_of("camera_pole")) / "agent.yaml"
        code, out = site.provision(device_of("wifi_ap"), "wifi_ap", "--wifi-interface", "wlan7")
        assert code == 0, out
        boxes["wifi_ap"] = site.box(device_of("wifi_ap")) / "agent.yaml"
        # The technician's key files, as the site's SNMP admin hands them over.
        (work / "snmp-auth").write_text(controller.auth_key)
        (work / "snmp-priv").write_text(controller.priv_key)
        code, out = site.provision(
            SNMP_BOX, "wifi_ap", "--snmp-host", f"wlc={controller.host}:{controller.port}",
            "--snmp-vendor", "cisco-wlc", "--snmp-user", controller.user,
            "--snmp-auth-file", str(work / "snmp-auth"),
            "--snmp-priv-file", str(work / "snmp-priv"),
        )  # fmt: skip
        assert code == 0, out
        boxes["snmp_ap"] = site.box(SNMP_BOX) / "agent.yaml"
        bundles = [str(p.parent / "registration.yaml") for p in boxes.values()]
        code, out = site.collector_cli("devices", "import", *bundles)
        assert code == 0, out
        code, out = site.broker_config()
        assert code == 0, out
        assert "12 device(s)" in out
        start_broker(site)
        yield site, boxes
    finally:
        if site is not None and site.broker is not None:
            site.broker.stop()
        simulators.stop_all()
        controller.stop()
        shutil.rmtree(files)


@pytest.mark.parametrize("kind", [*SENSORS, "camera_pole"])
def test_a_box_provisioned_from_flags_passes_its_check(kinds, kind):
    _, boxes = kinds
    code, lines = check(boxes[kind])
    assert code == 0, lines
    assert {"config", "broker", "publish"} <= set(lines)
    expected = (
        {"camera north"}
        if kind == "camera_pole"
        else {f"sensor {s.split(':')[2]}" for s in SENSORS[kind]}
    )
    assert expected <= set(lines), lines
    assert all(result == "pass" for result, _ in lines.values()), lines


def test_an_access_point_box_reads_the_interface_it_was_given(kinds):
    """No wireless card on the bench: everything passes but the access point itself,
    whose line names the interface provisioning wrote."""
    _, boxes = kinds
    code, lines = check(boxes["wifi_ap"])
    assert code == 1
    failed = {what for what, (result, _) in lines.items() if result == "FAIL"}
    assert failed == {"sensor ap"}, lines
    assert "wlan7" in lines["sensor ap"][1]


def test_a_box_beside_a_managed_access_point_reads_it_over_snmp(kinds):
    """Provisioned from flags alone: the controller's clients per WLAN and radio band
    over SNMP v3, and the whole check passing."""
    _, boxes = kinds
    code, lines = check(boxes["snmp_ap"])
    assert code == 0, lines
    assert {"config", "broker", "publish", "sensor wlc"} <= set(lines), lines
    assert all(result == "pass" for result, _ in lines.values()), lines
    assert "clients 42 count" in lines["sensor wlc"][1]


def test_camera_and_wifi_flags_are_refused_on_other_kinds(tmp_path):
    out = run_cli(
        "edge-agent", "provision", "--device", "air-x1", "--site", "dd", "--kind", "air",
        "--name", "x", "--broker-host", "127.0.0.1", "--ca", str(tmp_path / "ca.crt"),
        "--camera", "north=rtsp://10.0.0.9/s", "--out", str(tmp_path / "box"),
    )  # fmt: skip
    assert out.returncode == 2
    assert "--camera is for a camera_pole, not a air" in out.stdout
