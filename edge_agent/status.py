"""What the running agent is doing, kept on disk for `edge-agent status` and answered to
the collector's `report_status` command.

The agent rewrites `status.json` in its state directory every few seconds (whole, by
rename, so a reader never sees half of it), 0640 whatever the umask: a camera's last
value is a plate, which only the agent's group (the technicians) may read. The outbox
depth is not taken from it but counted live from the outbox, read-only: a technician
running `status` as another user must not leave files the agent cannot write.
"""

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_agent.sources.base import SourceStats
from iotruntime.private_files import write_private_file
from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
EVERY_S = 5.0


@dataclass(frozen=True)
class SourceState:
    name: str
    kind: str
    last_value: str
    last_value_at: float | None
    errors: int
    overruns: int
    last_error: str


@dataclass(frozen=True)
class AgentStatus:
    device: str
    kind: str
    pid: int
    boot_id: str
    started_at: float
    written_at: float
    outbox_depth: int
    outbox_dropped: int
    broker_connected: bool
    last_publish_at: float | None
    sources: list[SourceState]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "AgentStatus":
        data = json.loads(text)
        data["sources"] = [SourceState(**s) for s in data["sources"]]
        return cls(**data)


def source_states(stats: dict[str, SourceStats], kinds: dict[str, str]) -> list[SourceState]:
    return [
        SourceState(
            name,
            kinds[name],
            s.last_value,
            s.last_value_at or None,
            s.errors,
            s.overruns,
            s.last_error,
        )
        for name, s in stats.items()
    ]


def write_status(state_dir: Path, status: AgentStatus) -> None:
    write_private_file(state_dir / STATUS_FILE, status.to_json().encode(), group_read=True)


def read_status(state_dir: Path) -> AgentStatus | None:
    try:
        return AgentStatus.from_json((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def outbox_counts(state_dir: Path) -> tuple[int, int] | None:
    """Messages waiting and messages dropped, read-only; None without an outbox, or when
    this user cannot read it live: with the agent stopped SQLite must create the WAL
    index to read, which the agent's group may not do in the agent's directory."""
    path = state_dir / "outbox.sqlite"
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            (depth,) = db.execute("SELECT count(*) FROM outbox").fetchone()
            row = db.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()
    except sqlite3.OperationalError:
        return None
    return int(depth), int(row[0]) if row else 0


async def keep_writing(
    state_dir: Path, snapshot: Callable[[], AgentStatus], stop: asyncio.Event
) -> None:
    """Rewrite the status every EVERY_S until `stop`, and once more after. A status that
    cannot be written (a full disk) is logged when it starts and when it ends: the agent
    goes on sampling and sending, which matters more than its report."""
    failing = False
    while True:
        try:
            write_status(state_dir, snapshot())
        except OSError as exc:
            if not failing:
                log.warning("cannot write %s: %s; the agent carries on", STATUS_FILE, exc)
            failing = True
        else:
            if failing:
                log.info("%s is written again", STATUS_FILE)
            failing = False
        if stop.is_set():
            return
        await sleep_unless_stopped(stop, EVERY_S)
