"""Configs pushed by the collector (`push_config`): verified, validated, checked on the
box, applied with a restart, and taken back if the box cannot reach the broker on them.

A box 40 km away has no technician beside it, so a push must not be able to strand it:

1. The push must be signed by the collector's key (`collector_key`, iotwire/config_push.py)
   and issued after the last push this box took, so an old push cannot be replayed to
   roll the box back.
2. The config must load with the agent's own model (`load_agent`), written beside the
   running one so its relative paths (password file, CA, profiles) mean what they will
   mean, and keep the box's identity: device id, site and state folder. A new id or site
   would take another box's topics, and a new state folder would leave the outbox, and the
   record of this very push, behind.
3. It is checked as `edge-agent check` checks a box, less what cannot be done beside the
   running agent: every source the push adds or changes is read once (one the push leaves
   as it is is being read by the agent already, and a push must stay possible while a
   sensor is down). The broker is not tried: the broker binds a device's client id to its
   credential, so a second session would take over the running agent's and end its
   persistent session, the one this push came over (edge_agent/check.py, agent_session).
   The agent's own connection after the restart is the broker check instead.
4. The previous config is kept in the state folder, the push recorded there, the new config
   renamed over the old one (readers see one or the other) and the agent restarted on it
   (the reload_config path). The process that took the push does not answer it: it cannot
   know how it ends.
5. The new process watches its own connection (`roll_back_unless_connected`, started by
   `edge-agent run`): connected within the push's `rollback_after_s`, the push is applied;
   not, the previous config goes back and the agent restarts on it. The deadline is kept
   with the record, so a process that dies and is started again by systemd does not get a
   fresh one.

The collector asks again, repeating the same signed push every few seconds until it hears
an answer: whichever process hears it answers from the record (iotwire's `PushOutcome`), so
the answer comes from the process that knows, once it is on the broker. A process on the
new config hearing the collector at all has reached the broker, which settles the push as
applied.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from edge_agent.config import AgentConfig, LoadedAgent, ModbusSource, load_agent
from edge_agent.records import read_record_file, write_record_file
from iotruntime.configfile import ConfigError
from iotruntime.private_files import make_private_dirs, write_private_file, write_whole
from iotwire.config_push import (
    ConfigPush,
    PushError,
    PushOutcome,
    outcome_detail,
    public_key,
    verified_push,
)
from iotwire.messages import Command

log = logging.getLogger(__name__)
FOLDER = "remote-config"
RECORD = "push.json"
PREVIOUS = "previous.yaml"
WATCH_EVERY_S = 0.5
RESTARTING = "restarting"
PUSH_MAX_AGE_S = 300.0
"""A new push older than this is not acted on: as with any command (commands.py), one
that waited out an outage in the box's session is not what anyone asks for now."""


class PushRecord(BaseModel):
    """The last push this box took (verified and new), in the state folder: what the
    collector's repeated asks are answered from, and the mark a replay must beat."""

    id: str
    nonce: str
    issued: datetime
    by: str
    sha256: str
    rollback_after_s: float
    stage: Literal["restarting", "applied", "refused", "rolled_back"]
    reason: str = ""
    deadline: float | None = None  # wall clock; set by the first start on the new config


def read_record(state_dir: Path) -> PushRecord | None:
    return read_record_file(state_dir / FOLDER / RECORD, PushRecord)


def _write_record(state_dir: Path, record: PushRecord) -> PushRecord:
    return write_record_file(state_dir / FOLDER / RECORD, record)


def _settle(state_dir: Path, record: PushRecord, stage: PushOutcome, reason: str) -> PushRecord:
    return _write_record(
        state_dir, record.model_copy(update={"stage": stage.value, "reason": reason})
    )


def _applied(state_dir: Path, record: PushRecord) -> PushRecord:
    return _settle(
        state_dir,
        record,
        PushOutcome.APPLIED,
        f"the agent restarted on it and reached the broker (sha256 {record.sha256[:16]})",
    )


def answer(record: PushRecord) -> tuple[bool, str]:
    """The acknowledgement's ok and detail for a settled push."""
    outcome = PushOutcome(record.stage)
    return outcome is PushOutcome.APPLIED, outcome_detail(outcome, record.reason)


def stale(issued: datetime, last: datetime | None, what: str) -> str | None:
    """Why a new signed command (a push, a release offer) is not to be acted on: issued
    too long ago, or not after the last one this box took (an old one replayed to roll it
    back). Only a new one must be fresh: the same one is asked about until it settles,
    which a long rollback window or a release's install can put well past the age."""
    age = datetime.now(UTC) - issued
    if age > timedelta(seconds=PUSH_MAX_AGE_S):
        return outcome_detail(
            PushOutcome.REFUSED, f"issued {age.total_seconds():.0f} s ago: too old to act on"
        )
    if last is not None and issued <= last:
        return outcome_detail(
            PushOutcome.REFUSED,
            f"issued {issued.isoformat()}, not after the last {what} this box took"
            f" ({last.isoformat()}): an old {what} replayed",
        )
    return None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _unchanged_sources(new: AgentConfig, running: AgentConfig) -> set[str]:
    """Sources the push leaves as they are (the interval aside, which changes nothing
    about reading them), on a bus it leaves as it is."""

    def reading(config: AgentConfig) -> dict[str, object]:
        buses = {b.name: b for b in config.buses}
        return {
            s.name: (
                s.model_dump(exclude={"interval_s"}),
                buses[s.bus] if isinstance(s, ModbusSource) else None,
            )
            for s in config.sources
        }

    old = reading(running)
    return {name for name, how in reading(new).items() if old.get(name) == how}


class RemoteConfig:
    """The box's side of `push_config` and `report_config` for the agent running on
    `config_path`; `restart` is the reload_config path."""

    def __init__(self, device: str, config_path: Path, restart: Callable[[], None]) -> None:
        self._device = device
        self._path = config_path
        self._restart = restart
        self.running_text = config_path.read_text(encoding="utf-8")
        self._running = load_agent(config_path)
        self._state_dir = self._running.config.state_dir

    def report(self) -> str:
        """What this agent runs, and the last push, for `collector devices config show`."""
        record = read_record(self._state_dir)
        last = "none"
        if record is not None:
            why = f": {record.reason}" if record.reason else ""
            issued = record.issued.isoformat()
            last = f"{record.id} by {record.by}, issued {issued}, {record.stage}{why}"
        return f"{self._path}, sha256 {sha256(self.running_text)}; last push: {last}"

    async def push(self, command: Command) -> tuple[bool, str] | None:
        """The answer (ok, detail), or None when the agent restarts on the config and
        the process after it answers."""
        try:
            push = self._verified(command)
        except PushError as exc:
            return False, outcome_detail(PushOutcome.REFUSED, str(exc))
        record = read_record(self._state_dir)
        if record is not None and record.nonce == push.nonce:
            return self._asked_again(record)
        refusal = stale(push.issued, record.issued if record else None, "push")
        if refusal is not None:
            return False, refusal
        # From here the push is this box's latest: whatever becomes of it is recorded.
        record = PushRecord(
            id=command.id,
            nonce=push.nonce,
            issued=push.issued,
            by=push.by,
            sha256=sha256(push.config),
            rollback_after_s=push.rollback_after_s,
            stage=RESTARTING,
        )
        refusal = await self._apply(push.config, record)
        if refusal is None:
            return None
        return answer(_settle(self._state_dir, record, PushOutcome.REFUSED, refusal))

    def _verified(self, command: Command) -> ConfigPush:
        key_path = self._running.config.collector_key
        if key_path is None:
            raise PushError("this box has no collector_key in its config: it takes no push")
        try:
            key = public_key(key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PushError(f"collector_key {key_path}: {exc}") from None
        push = verified_push(command.args, key)
        if push.device != self._device:
            raise PushError(f"signed for {push.device}, and this box is {self._device}")
        return push

    def _asked_again(self, record: PushRecord) -> tuple[bool, str]:
        """The collector repeats a push until it hears how it ended. Heard by the process
        restarted on it, the question itself proves the broker reached: applied."""
        if record.stage == RESTARTING:
            record = _applied(self._state_dir, record)
        return answer(record)

    async def _apply(self, text: str, record: PushRecord) -> str | None:
        """Put the config in place and restart on it, or say why not."""
        candidate = self._path.with_name(f".{self._path.name}.push")
        try:
            write_whole(candidate, text.encode(), self._path.stat().st_mode & 0o777)
        except OSError as exc:
            return (
                f"cannot write beside {self._path}: {exc.strerror or exc}; to take a push the"
                " agent must be able to write its config's folder"
            )
        try:
            problem = await self._problem(candidate)
            if problem is not None:
                return problem
            try:
                make_private_dirs(self._state_dir / FOLDER)
                write_private_file(self._state_dir / FOLDER / PREVIOUS, self.running_text.encode())
                _write_record(self._state_dir, record)
                candidate.replace(self._path)
            except OSError as exc:  # the caller records the refusal over this record
                return f"cannot put it in place: {exc.strerror or exc}"
        finally:
            candidate.unlink(missing_ok=True)
        self._restart()
        return None

    async def _problem(self, candidate: Path) -> str | None:
        """Why the config at `candidate` must not replace the running one, if it must not."""
        try:
            new = load_agent(candidate)
        except ConfigError as exc:
            return "it does not load: " + str(exc).replace(str(candidate), "the pushed config")
        running = self._running.config
        for what, now, then in (
            ("device.id", running.device.id, new.config.device.id),
            ("device.site", running.device.site, new.config.device.site),
            ("state_dir", running.state_dir, new.config.state_dir),
        ):
            if now != then:
                return f"{what} would change from {now} to {then}: a push keeps the box's identity"
        key = new.config.collector_key
        try:
            public_key(key.read_bytes() if key is not None else b"")
        except (OSError, ValueError) as exc:
            return f"collector_key {key}: {exc}; a push must leave the box able to take the next"
        unchanged = _unchanged_sources(new.config, running)
        to_read = [s for s in new.config.sources if s.name not in unchanged]
        if not to_read:
            return None
        # Here, not above: check.py reads with the agent's own readers (agent.py), and the
        # agent imports this module through commands.py.
        from edge_agent.check import check_sources

        lines = await check_sources(
            new.model_copy(update={"config": new.config.model_copy(update={"sources": to_read})})
        )
        failed = [f"{line.what}: {line.detail}" for line in lines if not line.ok]
        return "check failed: " + "; ".join(failed) if failed else None


async def roll_back_unless_connected(
    loaded: LoadedAgent, config_path: Path, connected: Callable[[], bool], stop: asyncio.Event
) -> bool:
    """In an agent started on a pushed config: settle the push as applied once the agent
    is connected, or, not connected within the push's `rollback_after_s`, put the
    previous config back and stop the agent. Whether it stopped the agent to restart it."""
    state_dir = loaded.config.state_dir
    record = read_record(state_dir)
    if record is None or record.stage != RESTARTING:
        return False
    deadline = record.deadline
    if deadline is None:
        deadline = time.time() + record.rollback_after_s
        record = _write_record(state_dir, record.model_copy(update={"deadline": deadline}))
    while time.time() < deadline:
        if connected():
            if read_record(state_dir) == record:  # not settled by the collector's asking
                _applied(state_dir, record)
            return False
        try:
            async with asyncio.timeout(WATCH_EVERY_S):
                await stop.wait()
            return False  # stopped: the next start goes on with the same deadline
        except TimeoutError:
            pass
    _roll_back(loaded, config_path, record)
    log.warning("pushed config rolled back: the broker was not reached; restarting")
    stop.set()
    return True


def _roll_back(loaded: LoadedAgent, config_path: Path, record: PushRecord) -> None:
    state_dir, broker = loaded.config.state_dir, loaded.config.broker
    previous = (state_dir / FOLDER / PREVIOUS).read_bytes()
    write_whole(config_path, previous, config_path.stat().st_mode & 0o777)
    _settle(
        state_dir,
        record,
        PushOutcome.ROLLED_BACK,
        f"the agent restarted on it but did not reach the broker at {broker.host}:{broker.port}"
        f" within {record.rollback_after_s:g} s; the previous config is back",
    )
