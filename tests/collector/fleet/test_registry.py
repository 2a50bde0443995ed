"""The device registry takes a box under its own name only: a bundle whose credential
names someone else, or a name the operations center uses on the broker, or a revoked
credential, is refused with the file and the key at fault."""

import sqlite3
from pathlib import Path

import pytest
import yaml

from collector.fleet.registry import Registry
from iotruntime.broker_access import password_entry
from iotruntime.certificates import certificate_sha256, create_ca, issue_client
from iotruntime.configfile import ConfigError

DEVICE_CA = create_ca("device CA")


def bundle(tmp_path: Path, device: str, username: str | None = None, **credential: str) -> Path:
    username = username or device
    credential = credential or {"password_entry": password_entry(username, "secret")}
    path = tmp_path / f"{device}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "device": device,
                "site": "duong-dong",
                "kind": "air",
                "name": f"{device} station",
                "credential": {"username": username, **credential},
            }
        )
    )
    return path


def certificate(device: str, subject: str | None = None) -> dict[str, str]:
    issued = issue_client(DEVICE_CA, subject or device)
    return {
        "certificate_sha256": certificate_sha256(issued.cert_pem),
        "certificate": issued.cert_pem.decode(),
    }


@pytest.fixture
def registry(tmp_path):
    opened = Registry(tmp_path / "devices.sqlite")
    yield opened
    opened.close()


def refusal(registry: Registry, path: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        registry.import_file(path)
    return str(refused.value)


def test_a_bundle_signing_in_as_another_name_is_refused_naming_the_file_and_key(registry, tmp_path):
    path = bundle(tmp_path, "air-dd-09", "collector")
    assert refusal(registry, path) == (
        f"{path}: credential: Value error, username 'collector' is not the box's device id"
        " 'air-dd-09': a box signs in to the broker as itself"
    )
    assert registry.all() == []


def test_a_box_named_after_the_collector_is_refused(registry, tmp_path):
    path = bundle(tmp_path, "collector")
    assert refusal(registry, path) == (
        f"{path}: device: Value error, a name the operations center uses on the broker, not a"
        " box's (got 'collector')"
    )


def test_a_box_named_after_a_console_broker_config_made_is_refused(registry, tmp_path):
    registry.reserve({"police-1": "console", "collector-b": "collector"})
    for name, role in (("police-1", "console"), ("collector-b", "collector")):
        path = bundle(tmp_path, name)
        assert refusal(registry, path) == (
            f"{path}: device: {name!r} is a {role}'s name on the broker, not a box's"
        )


def test_a_certificate_must_be_the_fingerprinted_one_and_name_the_box_alone(registry, tmp_path):
    good = certificate("air-dd-01")
    other = certificate("air-dd-02")
    path = bundle(tmp_path, "air-dd-01", **{**good, "certificate": other["certificate"]})
    assert "certificate_sha256 is not the fingerprint of certificate" in refusal(registry, path)
    path = bundle(tmp_path, "air-dd-01", **certificate("air-dd-01", "air-dd-02"))
    assert "certificate's subject must be CN=air-dd-01 alone" in refusal(registry, path)
    entry, new = registry.import_file(bundle(tmp_path, "air-dd-01", **good))
    assert new
    assert entry.credential is not None
    assert entry.credential.certificate == good["certificate"]


def test_a_revoked_credential_stays_revoked_and_a_new_one_brings_the_box_back(registry, tmp_path):
    issued = certificate("air-dd-01")
    old = bundle(tmp_path, "air-dd-01", **issued)
    registry.import_file(old)
    revocation = registry.revoke("air-dd-01")
    assert revocation.device.revoked is not None
    assert revocation.serial is not None
    assert registry.revoke("air-dd-01").device.revoked == revocation.device.revoked
    assert [serial for serial, _ in registry.revoked_certificates()] == [revocation.serial]
    assert "credential: revoked on " in refusal(registry, old)
    entry, new = registry.import_file(bundle(tmp_path, "air-dd-01", **certificate("air-dd-01")))
    assert (new, entry.revoked) == (False, None)
    assert registry.get("air-dd-01").revoked is None
    with pytest.raises(KeyError):
        registry.revoke("air-dd-77")


def test_a_registry_from_before_revocation_opens_and_keeps_its_boxes(tmp_path):
    path = tmp_path / "devices.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE devices (device TEXT PRIMARY KEY, site TEXT NOT NULL, kind TEXT NOT"
            " NULL, name TEXT NOT NULL, lat REAL, lon REAL, credential TEXT, imported TEXT NOT"
            " NULL)"
        )
        db.execute(
            "INSERT INTO devices VALUES ('cam-1', 'dd', 'camera_pole', 'Pole 1', NULL, NULL,"
            " NULL, '2026-01-01T00:00:00+00:00')"
        )
    registry = Registry(path)
    [entry] = registry.all()
    registry.close()
    assert (entry.device, entry.revoked) == ("cam-1", None)


def test_a_bundle_changing_a_box_in_service_needs_replace(registry, tmp_path):
    first = bundle(tmp_path, "ap-dd-03")
    registry.import_file(first)
    registry.import_file(first)  # the same bundle again: nothing changes, nothing refused
    as_camera = tmp_path / "as-camera.yaml"
    as_camera.write_text(
        yaml.safe_dump(yaml.safe_load(first.read_text()) | {"kind": "camera_pole"})
    )
    assert "kind: ap-dd-03 is registered as air, not camera_pole" in refusal(registry, as_camera)
    forged = bundle(tmp_path, "ap-dd-03", password_entry=password_entry("ap-dd-03", "other"))
    assert "credential: ap-dd-03 is registered with another credential" in refusal(registry, forged)
    assert registry.get("ap-dd-03").kind == "air"
    entry, new = registry.import_file(forged, replace=True)
    assert (entry.device, new) == ("ap-dd-03", False)
    assert registry.get("ap-dd-03").credential == entry.credential
