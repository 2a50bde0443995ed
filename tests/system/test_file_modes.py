"""Issue #23, item 9: every file holding secrets or personal data, made by the programs
themselves (a command run from a shell as much as a service under systemd), is closed to
other local accounts whatever the umask, and those meant to read one still do.

The outbox and `status.json` are 0640: a technician in the agent's group runs `edge-agent
status`. Everything else is 0600: the collector's store, spool, police database, API
users and device registry are read by the collector's own commands, run as its user. The
tests that switch accounts need root; elsewhere they are skipped."""

import contextlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from collector.api.users import Users
from collector.fleet.registry import Registry
from collector.ingest.spool import Spool
from collector.police.database import PoliceDb
from collector.stores.sqlite import SqliteStore
from edge_agent.agent import Agent
from edge_agent.cli.app import app as edge_agent_app
from edge_agent.config import load_agent
from edge_agent.outbox import Outbox
from edge_agent.status import AgentStatus, SourceState, write_status
from iotwire.topics import Channel
from tests.helpers import plate_read

KINDS: dict[str, tuple[Callable[[Path], object], int]] = {
    "outbox": (Outbox, 0o640),
    "store": (SqliteStore, 0o600),
    "spool": (Spool, 0o600),
    "police": (PoliceDb, 0o600),
    "users": (Users, 0o600),
    "registry": (Registry, 0o600),
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask 022", "umask 000"])
def umask(request):
    """Files are made under this umask, the test's own restored after."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


@pytest.mark.parametrize("kind", KINDS)
def test_each_database_with_its_wal_and_shm_is_closed_to_others_whatever_the_umask(
    tmp_path, umask, kind
):
    opener, expected = KINDS[kind]
    path = tmp_path / "state" / f"{kind}.sqlite"
    opened = opener(path)
    files = [path, path.with_name(f"{kind}.sqlite-wal"), path.with_name(f"{kind}.sqlite-shm")]
    assert [mode(f) for f in files] == [expected] * 3
    opened.close()


def a_status(plate: str) -> AgentStatus:
    """What a camera pole's agent writes: its last value is a plate."""
    now = time.time()
    camera = SourceState("north", "camera", plate, now, 0, 0, "")
    return AgentStatus("cam-1", "camera_pole", 1, "boot", now, now, 1, 0, True, now, [camera])


def test_the_status_file_with_the_last_plate_is_0640_whatever_the_umask(tmp_path, umask):
    write_status(tmp_path, a_status("51F-123.45"))
    assert mode(tmp_path / "status.json") == 0o640


def test_the_agent_makes_its_state_directory_0750_whatever_the_umask(tmp_path, umask):
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "air-1", "site": "dd", "kind": "air", "name": "Air 1"},
                "state_dir": str(tmp_path / "state"),
            }
        )
    )
    agent = Agent(load_agent(config))
    assert mode(tmp_path / "state") == 0o750
    agent.outbox.close()


AGENT_GROUP = 4242
"""The agent's group, to which the technicians belong; any number does."""
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching accounts needs root")


def as_account(uid: int, gid: int, work: Callable[[], object]) -> object:
    """What `work()` returns (or the exception it raises, as text), run in a child process
    as `uid` with `gid` its only group."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(reading)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                answer = {"returned": work()}
            except Exception as exc:
                answer = {"raised": f"{type(exc).__name__}: {exc}"}
            os.write(writing, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        answer = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return answer


@dataclass
class Pole:
    folder: Path
    outbox: Outbox
    """Held open, as by the running agent."""


@pytest.fixture
def pole() -> Iterator[Pole]:
    """A camera pole's files where other accounts can reach them (root's tmp_path is
    0700): the config, and a state directory of the agent's group holding a running
    agent's outbox, with a plate in it, and status."""
    folder = Path(tempfile.mkdtemp(prefix="pole-", dir="/tmp"))
    folder.chmod(0o755)
    state = folder / "state"
    config = folder / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "cam-1", "site": "dd", "kind": "camera_pole", "name": "Pole"},
                "state_dir": str(state),
            }
        )
    )
    config.chmod(0o644)
    outbox = Outbox(state / "outbox.sqlite")
    outbox.append(Channel.PLATE, lambda seq: plate_read(seq, ts=datetime.now(UTC)))
    write_status(state, a_status("68B-123.45"))
    for path in [state, *state.iterdir()]:
        os.chown(path, -1, AGENT_GROUP)
    yield Pole(folder, outbox)
    outbox.close()
    shutil.rmtree(folder)


def readable(paths: list[Path]) -> list[str]:
    """The names of the files this account can read."""
    found = []
    for path in paths:
        with contextlib.suppress(PermissionError), path.open("rb") as handle:
            handle.read(1)
            found.append(path.name)
    return found


@needs_root
@pytest.mark.servers  # the account's own process
def test_an_account_outside_the_groups_reads_neither_the_poles_files_nor_the_police_database(
    pole,
):
    center = pole.folder / "center"
    police = PoliceDb(center / "police.sqlite")
    for directory in (pole.folder / "state", center):
        directory.chmod(0o755)  # even where a directory lets everyone through
    files = sorted((pole.folder / "state").iterdir()) + sorted(center.iterdir())
    # The outbox with its -wal, -shm and ballast, the police database with -wal and -shm,
    # the status.
    assert len(files) == 8
    assert as_account(NOBODY, NOBODY, lambda: readable(files)) == {"returned": []}
    police.close()


def technician_runs_status(config: Path) -> Callable[[], object]:
    def run() -> object:
        result = CliRunner().invoke(edge_agent_app, ["status", "-c", str(config)])
        return [result.exit_code, " ".join(result.output.split())]

    return run


@needs_root
@pytest.mark.servers  # the account's own process
def test_a_technician_in_the_agents_group_runs_edge_agent_status_on_the_running_agent(pole):
    config = pole.folder / "agent.yaml"
    answer = as_account(NOBODY, AGENT_GROUP, technician_runs_status(config))
    assert isinstance(answer, dict)
    code, output = answer["returned"]
    assert code == 0, output
    assert "outbox: 1 message(s) waiting" in output
    assert "68B-123.45" in output


@needs_root
@pytest.mark.servers  # the account's own process
def test_a_technician_in_the_agents_group_runs_edge_agent_status_after_the_agent_stopped(pole):
    pole.outbox.close()  # and with it SQLite removes the WAL index only the agent may make
    assert not (pole.folder / "state" / "outbox.sqlite-shm").exists()
    config = pole.folder / "agent.yaml"
    answer = as_account(NOBODY, AGENT_GROUP, technician_runs_status(config))
    assert isinstance(answer, dict)
    code, output = answer["returned"]
    assert code == 0, output
    assert "outbox: 1 message(s) waiting" in output  # as the agent last wrote it
