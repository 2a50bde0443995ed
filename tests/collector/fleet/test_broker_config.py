"""`write_broker_config` refuses whatever would give the broker a hole, naming the device
or the option at fault and writing nothing, and otherwise writes per-listener files that
only the broker's group may read. (The files at work in a real Mosquitto:
tests/system/test_broker_security.py.)"""

import grp
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.fleet.broker_config import (
    BrokerConfigError,
    BrokerLayout,
    BrokerReloadError,
    BrokerTls,
    reload_broker,
    write_broker_config,
)
from collector.fleet.registry import RegisteredDevice
from iotruntime.broker_access import password_entry
from iotruntime.certificates import (
    certificate_sha256,
    create_ca,
    issue_client,
    revocation_list,
    serial_number,
)
from iotruntime.registration import BoxKind, Credential

SITE_CA, DEVICE_CA = create_ca("site CA"), create_ca("device CA")
NOW = datetime.now(UTC)


def by_password(device: str, kind: BoxKind = BoxKind.AIR, username: str | None = None):
    username = username or device
    credential = Credential(username=username, password_entry=password_entry(username, "pw"))
    return RegisteredDevice(device, "dd", kind, f"{device} box", None, credential, NOW)


def by_certificate(device: str, ca=DEVICE_CA, with_pem: bool = True, revoked=None):
    cert = issue_client(ca, device).cert_pem
    credential = Credential(
        username=device,
        certificate_sha256=certificate_sha256(cert),
        certificate=cert.decode() if with_pem else None,
    )
    return RegisteredDevice(device, "dd", BoxKind.NOISE, device, None, credential, NOW, revoked)


@pytest.fixture
def tls(tmp_path) -> BrokerTls:
    for name, pem in (("ca.crt", SITE_CA.cert_pem), ("device-ca.crt", DEVICE_CA.cert_pem)):
        (tmp_path / name).write_bytes(pem)
    return BrokerTls(
        tmp_path / "ca.crt",
        tmp_path / "server.crt",
        tmp_path / "server.key",
        tmp_path / "device-ca.crt",
    )


DEFAULT = BrokerLayout()


def refused(devices, tls, out: Path, layout=DEFAULT, revoked=()) -> list[str]:
    with pytest.raises(BrokerConfigError) as error:
        write_broker_config(devices, tls, layout, out, revoked)
    assert not out.exists()  # nothing written
    return error.value.problems


def test_a_registry_row_signing_in_as_the_collector_is_refused_by_name(tls, tmp_path):
    devices = [by_password("cam-dd-07"), by_password("cam-dd-99", username="collector")]
    assert refused(devices, tls, tmp_path / "broker") == [
        "cam-dd-99: signs in as 'collector', not as itself (import its bundle again: this"
        " registry predates the check)"
    ]


def test_no_device_may_bear_a_collectors_a_consoles_or_a_collector_client_id(tls, tmp_path):
    layout = BrokerLayout(collectors=("col-a",), consoles=("police-1",), client_ids=("ingest",))
    names = ("collector", "col-a", "police-1", "ingest")
    problems = refused([by_password(n) for n in names], tls, tmp_path / "broker", layout)
    assert [p for p in problems if "registered device" not in p] == [
        f"{n}: the operations center's name on the broker, not a box's" for n in names
    ]


def test_collector_and_console_names_are_checked(tls, tmp_path):
    layout = BrokerLayout(collectors=("col-a", "Col B"), consoles=("col-a", "cam-dd-07"))
    assert refused([by_password("cam-dd-07")], tls, tmp_path / "broker", layout) == [
        "'Col B': a broker user is 1-63 lowercase letters, digits or -",
        "'cam-dd-07' is a registered device: choose another name",
        "'col-a' is given twice (collectors and consoles need their own)",
        "cam-dd-07: the operations center's name on the broker, not a box's",
    ]


def test_certificates_must_come_from_a_device_ca_that_is_not_the_site_ca(tls, tmp_path):
    devices = [
        by_certificate("noise-dd-01"),
        by_certificate("noise-dd-02", ca=SITE_CA),
        by_certificate("noise-dd-03", with_pem=False),
    ]
    assert refused(devices, tls, tmp_path / "broker") == [
        "noise-dd-02: its certificate is not from the device CA",
        "noise-dd-03: its bundle carries no certificate (provisioned before the device CA):"
        " provision it again with --device-ca, or revoke it",
    ]
    no_device_ca = BrokerTls(tls.ca_file, tls.cert_file, tls.key_file)
    assert refused(devices[:1], no_device_ca, tmp_path / "broker") == [
        "devices with a certificate need --device-ca, the CA that signs them"
    ]
    site_as_device = BrokerTls(tls.ca_file, tls.cert_file, tls.key_file, tls.ca_file)
    assert "--device-ca is the site CA" in refused([], site_as_device, tmp_path / "broker")[0]


def test_revoked_certificates_need_a_crl_from_the_device_ca_that_lists_them(tls, tmp_path):
    lost = by_certificate("noise-dd-01", revoked=NOW)
    serial = serial_number(lost.credential.certificate.encode())
    devices = [lost, by_certificate("noise-dd-02")]
    out = tmp_path / "broker"
    assert refused(devices, tls, out, revoked=[serial]) == [
        "revoked certificates need --crl, from collector devices revoke"
    ]
    crl = tmp_path / "devices.crl"
    with_crl = BrokerTls(tls.ca_file, tls.cert_file, tls.key_file, tls.device_ca_file, crl)
    crl.write_bytes(revocation_list(DEVICE_CA, [], 1))
    assert refused(devices, with_crl, out, revoked=[serial]) == [
        f"{crl} leaves out 1 revoked certificate(s): write it again with collector devices revoke"
    ]
    crl.write_bytes(revocation_list(SITE_CA, [(serial, NOW)], 2))
    assert refused(devices, with_crl, out, revoked=[serial]) == [
        f"{crl} is not signed by the device CA"
    ]
    crl.write_bytes(revocation_list(DEVICE_CA, [(serial, NOW)], 3))
    written = write_broker_config(devices, with_crl, BrokerLayout(), out, [serial])
    assert (written.certificate_devices, written.revoked) == (1, 1)
    conf = (out / "mosquitto.conf").read_text()
    assert f"crlfile {crl}" in conf
    acl = (out / "certificates.acl").read_text()
    assert "user CN=noise-dd-02" in acl
    assert "noise-dd-01" not in acl


def test_each_listener_gets_its_own_files_readable_by_the_brokers_group_only(tls, tmp_path):
    out = tmp_path / "broker"
    out.mkdir()
    (out / "passwords").write_text("collector:$7$old\n")  # from before per-listener files
    group = grp.getgrgid(os.getgid()).gr_name
    layout = BrokerLayout(collectors=("col-a", "col-b"), consoles=("police-1",), group=group)
    devices = [by_password("cam-dd-07", BoxKind.CAMERA_POLE), by_password("air-dd-01")]
    write_broker_config(devices, tls, layout, out)
    assert not (out / "passwords").exists()
    field = (out / "field.passwords").read_text()
    center = (out / "center.passwords").read_text()
    assert [line.split(":")[0] for line in field.split()] == ["police-1", "cam-dd-07", "air-dd-01"]
    assert [line.split(":")[0] for line in center.split()] == ["col-a", "col-b"]
    plates = [line for line in (out / "field.acl").read_text().splitlines() if "plate" in line]
    assert plates == ["topic write pq/v1/dd/cam-dd-07/plate"]
    for name in ("field.passwords", "field.acl", "center.passwords", "center.acl"):
        status = (out / name).stat()
        assert (status.st_mode & 0o777, status.st_gid) == (0o640, os.getgid())
    for name in ("col-a", "col-b", "police-1"):
        assert (out / f"{name}.password").stat().st_mode & 0o777 == 0o600
    conf = (out / "mosquitto.conf").read_text()
    assert conf.count("use_username_as_clientid true") == 1  # the field listener's
    assert "listener 8884" not in conf  # no device has a certificate
    assert "per_listener_settings true" in conf


def test_the_broker_saves_every_minute_and_holds_payloads_to_the_wire_maximum(tls, tmp_path):
    write_broker_config([], tls, BrokerLayout(persistence=Path("/var/lib/mosquitto")), tmp_path)
    lines = (tmp_path / "mosquitto.conf").read_text().splitlines()
    start = lines.index("persistence true")
    assert [line for line in lines[start:] if not line.startswith("#")][:6] == [
        "persistence true",
        "persistence_location /var/lib/mosquitto/",
        "autosave_interval 60",
        "pid_file /var/lib/mosquitto/mosquitto.pid",
        "message_size_limit 262144",  # iotwire.codec.MAX_PAYLOAD_BYTES
        "max_packet_size 266240",
    ]
    write_broker_config([], tls, BrokerLayout(pid_file=Path("/run/mosquitto/mq.pid")), tmp_path)
    assert "pid_file /run/mosquitto/mq.pid" in (tmp_path / "mosquitto.conf").read_text()


def test_the_folder_made_opens_to_the_broker_whatever_the_umask(tls, tmp_path):
    umask = os.umask(0o077)
    try:
        write_broker_config([by_password("cam-dd-07")], tls, DEFAULT, tmp_path / "etc" / "pq")
    finally:
        os.umask(umask)
    for folder in (tmp_path / "etc", tmp_path / "etc" / "pq"):
        assert folder.stat().st_mode & 0o777 == 0o755


def test_a_folder_the_brokers_group_cannot_pass_is_refused(tls):
    broker_group = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    layout = BrokerLayout(group=broker_group.gr_name)
    closed = Path(tempfile.mkdtemp())  # 0700, ours: as an operator's umask would leave it
    try:
        assert refused([], tls, closed / "broker", layout) == [
            f"{closed} is closed to group {broker_group.gr_name}: the broker could not read"
            f" its files (chmod o+x, or chgrp {broker_group.gr_name} and chmod g+x)"
        ]
        os.chown(closed, -1, broker_group.gr_gid)
        closed.chmod(0o710)
        write_broker_config([], tls, layout, closed / "broker")
        assert (closed / "broker" / "field.acl").stat().st_gid == broker_group.gr_gid
    finally:
        shutil.rmtree(closed)


def test_a_change_of_listeners_is_told_apart_from_what_a_reload_takes(tls, tmp_path):
    out = tmp_path / "broker"
    passwords = [by_password("cam-dd-07")]
    assert not write_broker_config(passwords, tls, DEFAULT, out).listeners_changed  # first
    again = write_broker_config([*passwords, by_password("air-dd-01")], tls, DEFAULT, out)
    assert not again.listeners_changed  # a box more: a reload reads it
    certified = write_broker_config([*passwords, by_certificate("noise-dd-01")], tls, DEFAULT, out)
    assert certified.listeners_changed  # the certificate listener opens: a restart
    moved = BrokerLayout(center_port=9885)
    assert write_broker_config(passwords, tls, moved, out).listeners_changed


def test_a_reload_signals_nothing_but_the_broker_running_the_config(tmp_path):
    conf, pid_file = tmp_path / "mosquitto.conf", tmp_path / "mosquitto.pid"
    conf.write_text("listener 8883\n")
    with pytest.raises(BrokerReloadError, match=f"^no {pid_file}: the broker is not running"):
        reload_broker(conf, pid_file)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    pid_file.write_text(f"{pid_max + 1}\n")  # a broker killed long ago
    with pytest.raises(BrokerReloadError, match=f"no process {pid_max + 1} "):
        reload_broker(conf, pid_file)
    pid_file.write_text("oops\n")
    with pytest.raises(BrokerReloadError, match="holds no pid"):
        reload_broker(conf, pid_file)


@pytest.mark.servers
def test_a_pid_file_naming_another_process_since_is_not_followed(tmp_path):
    conf, pid_file = tmp_path / "mosquitto.conf", tmp_path / "mosquitto.pid"
    conf.write_text("listener 8883\n")
    other = subprocess.Popen(["sleep", "30"])  # SIGHUP would end it
    try:
        pid_file.write_text(f"{other.pid}\n")
        with pytest.raises(BrokerReloadError, match="is not a mosquitto running"):
            reload_broker(conf, pid_file)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
