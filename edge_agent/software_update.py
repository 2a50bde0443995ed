"""Software releases offered by the collector (`update_software`): fetched, verified,
installed beside the running one, tried, and kept only if the box comes up healthy on them.

A box 40 km away must not be bricked by a release, so the release that runs is never the
one judged, and the program that judges is the one already proven:

1. The offer is signed by the collector's key and issued after the last one this box took
   (iotwire/software_update.py), as a pushed config is (edge_agent/remote_config.py).
2. The bundle (scripts/build_bundle.py: wheels, their pins and SHA256SUMS) is fetched
   from the offer's URL and must have the signed digest; its wheels must match their
   sums. It is installed with no index into a new virtualenv,
   `<releases_dir>/releases/<version>`, while the agent goes on sending: on a Pi that can
   take minutes.
3. Then the running agent stops and, as the same process (systemd's main pid, which keeps
   pinging the watchdog), starts the new release's `edge-agent run` as a child on the same
   config and outbox: its trial. The release is healthy when that child writes its status
   connected to the broker within the offer's `health_s`. A release that does not import,
   crashes, or cannot reach the broker is not.
4. Healthy: the child is stopped, `<releases_dir>/current` is pointed at the release (what
   systemd starts from, switched by a rename, so a power cut leaves one or the other), and
   this process becomes the release (exec). Not: the child is stopped, the release removed,
   and this process starts again as it was. Either way the record in the state folder says
   how it ended, and whichever process hears the collector ask again answers from it.

Why not a second, root-owned updater service: the trial is what judges a release, and it
has to run the agent with the agent's own user, devices and sandbox; the signature and the
digest are what keep the agent from installing what the center did not offer.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.records import read_record_file, write_record_file
from edge_agent.remote_config import stale
from edge_agent.status import read_status
from iotruntime.systemd import notify
from iotwire.config_push import PushError, PushOutcome, outcome_detail, public_key
from iotwire.config_push import verified_document as verified
from iotwire.messages import Command
from iotwire.software_update import SoftwareUpdate

log = logging.getLogger(__name__)
FOLDER = "software-update"
RECORD = "update.json"
TRIAL_LOG = "trial.log"
RELEASES = "releases"
CURRENT = "current"
DOWNLOADS = ".downloads"
MAX_BUNDLE_BYTES = 1 << 30
FETCH_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 1800.0
STOP_CHILD_S = 30.0
WATCH_EVERY_S = 0.5
Stage = Literal["installing", "trial", "applied", "refused", "rolled_back"]
UNSETTLED = ("installing", "trial")
TRIAL_ENV = "EDGE_AGENT_TRIAL"
"""Set, to the offer's nonce, in the environment of a release's agent on trial."""


class UpdateRecord(BaseModel):
    """The last offer this box took: what the collector's repeated asks are answered from,
    the mark a replay must beat, and, at `trial`, what the next start is to try."""

    id: str
    nonce: str
    issued: datetime
    by: str
    version: str
    sha256: str
    health_s: float
    stage: Stage
    reason: str = ""
    release: str = ""


def read_record(state_dir: Path) -> UpdateRecord | None:
    return read_record_file(state_dir / FOLDER / RECORD, UpdateRecord)


def _write(state_dir: Path, record: UpdateRecord) -> UpdateRecord:
    return write_record_file(state_dir / FOLDER / RECORD, record)


def _settle(state_dir: Path, record: UpdateRecord, stage: Stage, reason: str) -> UpdateRecord:
    return _write(state_dir, record.model_copy(update={"stage": stage, "reason": reason}))


def answer(record: UpdateRecord) -> tuple[bool, str]:
    outcome = PushOutcome(record.stage)
    return outcome is PushOutcome.APPLIED, outcome_detail(outcome, record.reason)


class UpdateFailed(Exception):
    """Why a release cannot be installed; nothing of it is left in place."""


def _fetch(url: str, into: Path, sha256: str) -> None:
    """Download `url` to `into`, refusing a body over MAX_BUNDLE_BYTES or with another
    digest than the signed one."""
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response,  # noqa: S310 - http(s) only, by the signed offer's pattern
            into.open("wb") as file,
        ):
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_BUNDLE_BYTES:
                    raise UpdateFailed(f"{url}: over {MAX_BUNDLE_BYTES >> 20} MiB")
                digest.update(chunk)
                file.write(chunk)
    except OSError as exc:
        raise UpdateFailed(f"cannot fetch {url}: {exc}") from None
    if digest.hexdigest() != sha256:
        raise UpdateFailed(
            f"{url} has sha256 {digest.hexdigest()[:16]}…, not the signed {sha256[:16]}…"
        )


def _unpack(bundle: Path, into: Path) -> Path:
    """The bundle's wheels folder, every wheel checked against its SHA256SUMS."""
    try:
        with tarfile.open(bundle) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise UpdateFailed(f"the bundle does not unpack: {exc}") from None
    wheels = into / "wheels"
    try:
        sums = (wheels / "SHA256SUMS").read_text().splitlines()
    except OSError:
        raise UpdateFailed("the bundle has no wheels/SHA256SUMS") from None
    for line in sums:
        expected, _, name = line.partition("  ")
        path = wheels / name.strip()
        with path.open("rb") as wheel:
            digest = hashlib.file_digest(wheel, "sha256").hexdigest()
        if digest != expected:
            raise UpdateFailed(f"{name.strip()} does not match its checksum: a damaged bundle")
    return wheels


async def _run(*command: str, timeout_s: float = INSTALL_TIMEOUT_S) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout_s):
            _, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise UpdateFailed(f"{Path(command[0]).name} took over {timeout_s:g} s") from None
    if process.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise UpdateFailed(f"{' '.join(command[1:4])} failed: {last[0]}")


async def install(bundle_wheels: Path, venv: Path) -> None:
    """A new virtualenv at `venv` with every wheel the bundle pins and nothing from an
    index, as scripts/venv-install.sh does on a first install. Every pin, not the package
    and its extras: the bundle was built with the extras its boxes need (vision for a
    camera pole), and its pins are exactly those."""
    await _run(sys.executable, "-m", "venv", str(venv))
    pins = [
        line
        for line in (bundle_wheels / "requirements.txt").read_text().splitlines()
        if line.strip()
    ]
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index"]
    pinned = bundle_wheels.parent / "pins.txt"
    pinned.write_text("\n".join(p for p in pins if not p.startswith("rapidocr")) + "\n")
    await _run(*pip, "--find-links", str(bundle_wheels), "-r", str(pinned))
    # The OCR models, without their declared dependencies (the GUI build of OpenCV).
    for ocr in (p for p in pins if p.startswith("rapidocr")):
        await _run(*pip, "--find-links", str(bundle_wheels), "--no-deps", ocr)


def _make_room(root: Path, venv: Path) -> None:
    (root / DOWNLOADS).mkdir(parents=True, exist_ok=True)
    (root / RELEASES).mkdir(exist_ok=True)
    if venv.exists() and venv.resolve() == Path(sys.prefix).resolve():
        raise UpdateFailed(f"{venv} is the running release")
    shutil.rmtree(venv, ignore_errors=True)  # what an interrupted install left


class SoftwareUpdates:
    """The box's side of `update_software` for the agent running on `config`;
    `stop_for_trial` stops the agent so that `run` tries the installed release."""

    def __init__(
        self, device: str, config: AgentConfig, stop_for_trial: Callable[[], None]
    ) -> None:
        self._device = device
        self._config = config
        self._state_dir = config.state_dir
        self._stop_for_trial = stop_for_trial
        self._installing: asyncio.Task[None] | None = None
        self._settle_interrupted()

    def _settle_interrupted(self) -> None:
        """An install or a trial this agent finds unsettled at its start was cut short
        (a power cut, a stop): say so, rather than leave the collector asking forever and
        every new offer refused. The trial's own child is exempt: it starts while its
        parent judges it, and knows by the offer's nonce in its environment."""
        record = read_record(self._state_dir)
        if record is None or record.stage not in UNSETTLED:
            return
        if os.environ.get(TRIAL_ENV) == record.nonce:
            return
        if record.release:
            shutil.rmtree(record.release, ignore_errors=True)
        _settle(
            self._state_dir,
            record,
            "rolled_back" if record.stage == "trial" else "refused",
            f"release {record.version}: the agent started again before its"
            f" {'trial' if record.stage == 'trial' else 'install'} ended; {__version__} runs",
        )

    async def offer(self, command: Command) -> tuple[bool, str] | None:
        """The answer (ok, detail), or None while the offer is being installed or tried:
        the collector asks again until it hears how it ended."""
        try:
            update = self._verified(command)
        except PushError as exc:
            return False, outcome_detail(PushOutcome.REFUSED, str(exc))
        record = read_record(self._state_dir)
        if record is not None and record.nonce == update.nonce:
            return None if record.stage in UNSETTLED else answer(record)
        refusal = stale(update.issued, record.issued if record else None, "update")
        if refusal is not None:
            return False, refusal
        if record is not None and record.stage in UNSETTLED:
            return False, outcome_detail(
                PushOutcome.REFUSED, f"release {record.version} is being installed or tried"
            )
        record = UpdateRecord(
            id=command.id,
            nonce=update.nonce,
            issued=update.issued,
            by=update.by,
            version=update.version,
            sha256=update.sha256,
            health_s=update.health_s,
            stage="installing",
        )
        if update.version == __version__:
            return answer(
                _settle(self._state_dir, record, "applied", f"runs {__version__} already")
            )
        _write(self._state_dir, record)
        self._installing = asyncio.create_task(self._install(update, record))
        return None

    def _verified(self, command: Command) -> SoftwareUpdate:
        key_path, releases = self._config.collector_key, self._config.releases_dir
        if key_path is None or releases is None:
            raise PushError(
                "this box takes no software update: its config needs collector_key and releases_dir"
            )
        try:
            key = public_key(key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PushError(f"collector_key {key_path}: {exc}") from None
        update = verified(command.args, key, SoftwareUpdate)
        if update.device != self._device:
            raise PushError(f"signed for {update.device}, and this box is {self._device}")
        return update

    async def _install(self, update: SoftwareUpdate, record: UpdateRecord) -> None:
        assert self._config.releases_dir is not None  # checked with the signature
        root = self._config.releases_dir
        venv = root / RELEASES / update.version
        downloads = root / DOWNLOADS
        try:
            await asyncio.to_thread(_make_room, root, venv)
            with tempfile.TemporaryDirectory(dir=downloads) as work:
                bundle = Path(work) / "bundle.tar.gz"
                log.info("fetching release %s from %s", update.version, update.url)
                await asyncio.to_thread(_fetch, update.url, bundle, update.sha256)
                wheels = await asyncio.to_thread(_unpack, bundle, Path(work) / "unpacked")
                log.info("installing release %s into %s", update.version, venv)
                await install(wheels, venv)
        except (UpdateFailed, OSError) as exc:
            shutil.rmtree(venv, ignore_errors=True)
            _settle(self._state_dir, record, "refused", f"release {update.version}: {exc}")
            log.warning("release %s refused: %s", update.version, exc)
            return
        _write(self._state_dir, record.model_copy(update={"stage": "trial", "release": str(venv)}))
        log.info("release %s installed; stopping to try it", update.version)
        self._stop_for_trial()


def pending_trial(state_dir: Path) -> UpdateRecord | None:
    record = read_record(state_dir)
    return record if record is not None and record.stage == "trial" else None


def try_release(config: AgentConfig, args: list[str], stopping: threading.Event) -> str:
    """Run the installed release on trial and settle it; the program this process is to
    become: the release's `edge-agent` if it came up healthy, else this one."""
    record = pending_trial(config.state_dir)
    if record is None or config.releases_dir is None:
        return sys.argv[0]
    program = str(Path(record.release) / "bin" / "edge-agent")
    healthy, reason = _trial(config, record, [program, *args], stopping)
    if healthy:
        _switch(config.releases_dir, Path(record.release))
        _settle(config.state_dir, record, "applied", reason)
        log.info("release %s applied: %s", record.version, reason)
        return program
    shutil.rmtree(record.release, ignore_errors=True)
    _settle(
        config.state_dir,
        record,
        "rolled_back",
        f"{reason}; {__version__} runs again and the release was removed",
    )
    log.warning("release %s rolled back: %s", record.version, reason)
    return sys.argv[0]


def _trial(
    config: AgentConfig, record: UpdateRecord, command: list[str], stopping: threading.Event
) -> tuple[bool, str]:
    """Whether the release, run as a child on the same config, reached the broker within
    the offer's health_s, and why (or why not) in words for the collector."""
    environment = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    environment[TRIAL_ENV] = record.nonce
    trial_log = config.state_dir / FOLDER / TRIAL_LOG
    started = time.time()
    with trial_log.open("wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment)
    broker = f"{config.broker.host}:{config.broker.port}"
    try:
        while time.time() - started < record.health_s:
            notify("WATCHDOG=1")
            status = read_status(config.state_dir)
            if status is not None and status.pid == child.pid and status.broker_connected:
                waited = time.time() - started
                return True, f"runs {record.version}, connected to {broker} after {waited:.0f} s"
            if child.poll() is not None:
                return False, f"release {record.version} exited with code {child.returncode}: " + (
                    _last_line(trial_log)
                )
            if stopping.is_set():
                return False, f"release {record.version}: the box was stopped during its trial"
            time.sleep(WATCH_EVERY_S)
        return False, (
            f"release {record.version} did not reach the broker at {broker}"
            f" within {record.health_s:g} s"
        )
    finally:
        _stop(child)


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][-300:] if lines else "no output"


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_CHILD_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _switch(root: Path, release: Path) -> None:
    """Point `current` at the release by renaming a new link over it, then remove the
    releases that are neither it nor the one it replaces (a box's SD card is small)."""
    current = root / CURRENT
    previous = current.resolve() if current.is_symlink() else Path(sys.prefix).resolve()
    link = root / f".{CURRENT}.new"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(release.relative_to(root) if release.is_relative_to(root) else release)
    link.replace(current)
    for old in (root / RELEASES).iterdir():
        if old.resolve() not in (release.resolve(), previous):
            shutil.rmtree(old, ignore_errors=True)
