"""The box's side of a software update, in process: which offers it takes, how it answers
again, what it refuses before installing anything, and the switch of `current`. The whole
path, with real releases, processes and broker, is tests/system/test_software_update.py."""

import asyncio
import hashlib
import io
import sys
import tarfile
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge_agent import __version__
from edge_agent.config import load_agent
from edge_agent.records import write_record_file
from edge_agent.software_update import (
    FOLDER,
    RECORD,
    TRIAL_ENV,
    SoftwareUpdates,
    UpdateFailed,
    UpdateRecord,
    _switch,
    _unpack,
    read_record,
    try_release,
)
from iotwire.config_push import signed_args
from iotwire.messages import Command
from iotwire.software_update import SoftwareUpdate

KEY = Ed25519PrivateKey.generate()
DEVICE = "air-up-01"


def box(tmp_path: Path, releases: bool = True):
    public = tmp_path / "collector.pub"
    public.write_bytes(
        KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": DEVICE, "site": "test-site", "kind": "air", "name": "bench"},
                "state_dir": "state",
                "collector_key": str(public),
                **({"releases_dir": "opt"} if releases else {}),
            }
        )
    )
    return load_agent(config).config


def command(version: str = "9.9.9", issued: datetime | None = None, device: str = DEVICE,
            key: Ed25519PrivateKey = KEY, nonce: str | None = None) -> Command:  # fmt: skip
    offer = SoftwareUpdate(
        device=device,
        issued=issued or datetime.now(UTC),
        nonce=nonce or uuid.uuid4().hex,
        by="ops-lan",
        version=version,
        url="http://127.0.0.1:9/edge-bundle.tar.gz",
        sha256="0" * 64,
        health_s=30,
    )
    return Command(
        device=DEVICE, seq=1, id=offer.nonce, name="update_software",
        args=signed_args(offer, key), ts=datetime.now(UTC),
    )  # fmt: skip


def offer(updates: SoftwareUpdates, made: Command):
    async def go():
        answered = await updates.offer(made)
        if updates._installing is not None:
            await updates._installing
        return answered

    return asyncio.run(go())


def test_an_offer_is_refused_without_a_releases_dir_or_with_a_foreign_signature(tmp_path):
    stopped = []
    bare = SoftwareUpdates(DEVICE, box(tmp_path, releases=False), lambda: stopped.append(1))
    ok, detail = offer(bare, command())
    assert not ok
    assert detail.startswith("refused: this box takes no software update")
    updates = SoftwareUpdates(DEVICE, box(tmp_path), lambda: stopped.append(1))
    ok, detail = offer(updates, command(key=Ed25519PrivateKey.generate()))
    assert (ok, detail) == (
        False,
        "refused: the signature does not verify with this box's collector_key",
    )
    ok, detail = offer(updates, command(device="air-up-99"))
    assert detail == f"refused: signed for air-up-99, and this box is {DEVICE}"
    ok, detail = offer(updates, command(issued=datetime.now(UTC) - timedelta(minutes=10)))
    assert detail.startswith("refused: issued 600 s ago")
    assert stopped == []


def test_a_release_that_cannot_be_fetched_is_refused_and_answered_again(tmp_path):
    config = box(tmp_path)
    stopped = []
    updates = SoftwareUpdates(DEVICE, config, lambda: stopped.append(1))
    made = command()
    assert offer(updates, made) is None  # installing: the collector asks again
    record = read_record(config.state_dir)
    assert record is not None
    assert record.stage == "refused"
    assert record.reason.startswith("release 9.9.9: cannot fetch http://127.0.0.1:9/")
    again = offer(updates, made)
    assert again == (False, "refused: " + record.reason)
    assert stopped == []
    assert not (tmp_path / "opt" / "releases" / "9.9.9").exists()


def test_an_older_offer_is_a_replay_and_the_running_version_is_applied_at_once(tmp_path):
    config = box(tmp_path)
    updates = SoftwareUpdates(DEVICE, config, lambda: None)
    ok, detail = offer(updates, command(version=__version__))
    assert (ok, detail) == (True, f"applied: runs {__version__} already")
    ok, detail = offer(updates, command(issued=datetime.now(UTC) - timedelta(seconds=30)))
    assert not ok
    assert "not after the last update this box took" in detail


def bundle(tmp_path: Path, damage: bool) -> Path:
    wheel = b"not really a wheel"
    sums = f"{hashlib.sha256(wheel).hexdigest()}  pyyaml-6.0-py3-none-any.whl\n"
    path = tmp_path / "bundle.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            ("wheels/pyyaml-6.0-py3-none-any.whl", wheel + (b"!" if damage else b"")),
            ("wheels/SHA256SUMS", sums.encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_damaged_bundle_is_refused_before_anything_is_installed(tmp_path):
    assert (_unpack(bundle(tmp_path, damage=False), tmp_path / "good") / "SHA256SUMS").exists()
    with pytest.raises(UpdateFailed, match="does not match its checksum"):
        _unpack(bundle(tmp_path, damage=True), tmp_path / "bad")


def test_the_switch_points_current_at_the_release_and_keeps_one_before_it(tmp_path):
    root = tmp_path / "opt"
    for version in ("0.1.0", "0.1.1", "0.1.2"):
        (root / "releases" / version).mkdir(parents=True)
    (root / "current").symlink_to("releases/0.1.1")
    _switch(root, root / "releases" / "0.1.2")
    assert (root / "current").resolve() == (root / "releases" / "0.1.2").resolve()
    assert sorted(p.name for p in (root / "releases").iterdir()) == ["0.1.1", "0.1.2"]


def test_no_trial_pending_keeps_this_program(tmp_path):
    assert try_release(box(tmp_path), ["run"], threading.Event()) == sys.argv[0]


def test_an_install_or_trial_cut_short_is_settled_when_the_agent_starts_again(
    tmp_path, monkeypatch
):
    config = box(tmp_path)
    release = tmp_path / "opt" / "releases" / "9.9.9"
    release.mkdir(parents=True)
    record = UpdateRecord(
        id="a" * 32, nonce="a" * 32, issued=datetime.now(UTC), by="ops-lan", version="9.9.9",
        sha256="0" * 64, health_s=30, stage="trial", release=str(release),
    )  # fmt: skip
    write_record_file(config.state_dir / FOLDER / RECORD, record)
    monkeypatch.setenv(TRIAL_ENV, record.nonce)
    SoftwareUpdates(DEVICE, config, lambda: None)  # the release's own agent, on trial
    assert read_record(config.state_dir).stage == "trial"
    monkeypatch.delenv(TRIAL_ENV)
    SoftwareUpdates(DEVICE, config, lambda: None)  # a start after a power cut
    settled = read_record(config.state_dir)
    assert settled.stage == "rolled_back"
    assert settled.reason == (
        f"release 9.9.9: the agent started again before its trial ended; {__version__} runs"
    )
    assert not release.exists()
