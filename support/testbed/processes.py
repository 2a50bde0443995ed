"""The project's own commands as real processes, and what /proc says of them."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def stat_fields(pid: int) -> list[str]:
    """/proc/`pid`/stat after the command name, so field 0 is the state, 1 the parent, 11
    and 12 the user and system CPU ticks (no procps needed). OSError once it has ended."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The processes `pid` started."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat_fields(int(stat.parent.name))[1])
        except OSError:
            continue  # it ended while we looked
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to reap it."""
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def run_cli(
    *args: str, timeout_s: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a project command as a technician would, in a 160-column terminal; `input` is
    what they would type."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        input=input,
        env={**os.environ, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class Processes:
    """Starts project commands as real processes, logs each to a file, ends them all."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self._workdir / f"{name}.log").open("ab")
        # A process that hangs is ended with SIGABRT by the tests that find it hanging:
        # faulthandler then writes where each of its threads stood into its log.
        process = subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
        self._running.append(process)
        return process

    def log(self, name: str) -> str:
        return (self._workdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in reversed(self._running):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
