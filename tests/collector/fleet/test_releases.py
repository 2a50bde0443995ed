"""The center's shelf of releases: a bundle is checked whole before it is offered, never
replaced, and the trail of offers cannot be rewritten. Rollouts with real boxes are
tests/system/test_software_update.py."""

import hashlib
import io
import sqlite3
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.fleet.releases import OFFERED, BadBundleError, ReleaseShelf, offer


def bundle(tmp_path: Path, files: dict[str, bytes], damage: str = "") -> Path:
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
    path = tmp_path / "edge-bundle-0.2.0-manylinux2014_aarch64-py3.11.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {**files, "SHA256SUMS": sums.encode()}.items():
            body = data + (b"!" if name == damage else b"")
            info = tarfile.TarInfo(f"wheels/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


WHEELS = {
    "phuquoc_telemetry-0.2.0-py3-none-any.whl": b"project",
    "pyyaml-6.0.3-cp311-cp311-manylinux2014_aarch64.whl": b"yaml",
}


@pytest.fixture
def shelf(tmp_path):
    made = ReleaseShelf(tmp_path / "center" / "devices.sqlite")
    yield made
    made.close()


def test_a_bundle_is_kept_with_its_version_and_digest(tmp_path, shelf):
    path = bundle(tmp_path, WHEELS)
    release = shelf.add(path, "ops-lan")
    assert (release.version, release.added_by) == ("0.2.0", "ops-lan")
    kept = shelf.folder / path.name
    assert release.sha256 == hashlib.sha256(kept.read_bytes()).hexdigest()
    assert shelf.all() == [release]
    with pytest.raises(BadBundleError, match="on the shelf already"):
        shelf.add(path, "ops-lan")


def test_a_damaged_or_foreign_bundle_is_refused(tmp_path, shelf):
    with pytest.raises(BadBundleError, match=r"pyyaml-6\.0\.3.* does not match its checksum"):
        shelf.add(
            bundle(tmp_path, WHEELS, damage="pyyaml-6.0.3-cp311-cp311-manylinux2014_aarch64.whl"),
            "ops",
        )
    with pytest.raises(BadBundleError, match="no phuquoc_telemetry wheel"):
        shelf.add(bundle(tmp_path, {"pyyaml-6.0.3-py3-none-any.whl": b"yaml"}), "ops")
    not_tar = tmp_path / "notes.tar.gz"
    not_tar.write_text("hello")
    with pytest.raises(BadBundleError, match="not a release bundle"):
        shelf.add(not_tar, "ops")
    assert shelf.all() == []
    assert not shelf.folder.exists() or not list(shelf.folder.iterdir())


def test_the_trail_of_offers_is_append_only(tmp_path, shelf):
    release = shelf.add(bundle(tmp_path, WHEELS), "ops-lan")
    made = offer(release, "air-up-01", "http://center/releases/x.tar.gz", "ops-lan", 60)
    assert made.sha256 == release.sha256
    assert made.issued <= datetime.now(UTC)
    shelf.record("ops-lan", made, release.name, OFFERED, made.url)
    [event] = shelf.events("air-up-01")
    assert (event.device, event.version, event.offer, event.action) == (
        "air-up-01", "0.2.0", made.nonce, OFFERED,
    )  # fmt: skip
    db = sqlite3.connect(tmp_path / "center" / "devices.sqlite")
    for change in (
        "UPDATE software_updates SET action = 'applied'",
        "DELETE FROM software_updates",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(change)
    db.close()
