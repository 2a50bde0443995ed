"""Plain helpers the tests share: ports, waiting, and running the project's commands."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from collector.config import load_collector
from iotwire.messages import ClockSync, PlateRead

BIN = Path(sys.executable).parent


class Address(Protocol):
    host: str
    port: int


def collector_config(folder: Path, broker: Address, client_id: str, **sections: Any) -> Path:
    """`folder`/collector.yaml: a collector on this broker with an SQLite store in the same
    folder; `sections` add config sections or replace these."""
    config = folder / "collector.yaml"
    base = {
        "broker": {"host": broker.host, "port": broker.port},
        "store": {"kind": "sqlite", "path": str(folder / "store.sqlite")},
        "ingest": {"client_id": client_id},
    }
    config.write_text(yaml.safe_dump(base | sections))
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def wait_for_http(url: str, timeout_s: float = 30.0) -> None:
    """Until the server answers `url` with a success status."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - test URL
                if response.status < 300:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:g} s")
        time.sleep(0.1)


def wait_until(
    predicate: Callable[[], object], timeout_s: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s:g} s")
        time.sleep(0.1)


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


def run_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a project command as a technician would, in a 160-column terminal."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        env={**os.environ, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def metrics(config: Path) -> dict[str, float]:
    port = load_collector(config).metrics.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        name: float(value)
        for line in text.splitlines()
        if line and not line.startswith("#")
        for name, value in [line.rsplit(" ", 1)]
    }


def plate_read(
    seq: int,
    text: str = "68B123456",
    *,
    ts: datetime,
    display: str | None = None,
    device: str = "cam-1",
    camera: str = "north",
) -> PlateRead:
    """A camera's read as the edge sends it, with a small crop."""
    return PlateRead(
        device=device,
        seq=seq,
        camera=camera,
        ts=ts,
        clock=ClockSync.SYNCED,
        text=text,
        display=display or text,
        confidence=0.93,
        box=(400, 300, 120, 90),
        colour="white",
        crop_jpeg_b64="/9j/4AAQSkZJRg==",
    )


def api_request(
    url: str,
    token: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    kind: str = "",
) -> tuple[int, str]:
    """One request to the test's own API server, with a bearer token; status and body,
    errors included."""
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - test server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if kind:
        request.add_header("Content-Type", kind)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
