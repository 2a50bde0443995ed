"""A real `collector run` serving the API, for the tests of this folder: its config, tokens
from `collector users add`, telemetry published to it over MQTT, and HTTP spoken on a bare
socket where a test needs to control what a client sends and when."""

import asyncio
import json
import select
import socket
import time
import urllib.parse
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import aiomqtt

from iotwire import encode
from testbed.collector_setup import collector_config
from testbed.processes import Processes, run_cli
from testbed.waiting import free_port, wait_for_port, wait_until
from tests.collector.stores.store_cases import T0, message
from tests.helpers import api_request


@dataclass
class Collector:
    config: Path
    port: int
    process: Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def person(self, name: str, role: str, password: str) -> None:
        """A user who signs in at a browser: a token, and a password set as staff set it."""
        self.token(name, role)
        done = run_cli(
            "collector", "users", "password", name, "--stdin", "-c", str(self.config),
            input=password + "\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def token(self, name: str, role: str, *options: str) -> str:
        added = run_cli(
            "collector", "users", "add", name, "--role", role, *options, "-c", str(self.config)
        )
        assert added.returncode == 0, added.stdout + added.stderr
        return added.stdout.strip().splitlines()[-1]

    def wait_stored(self, token: str, readings: int) -> None:
        """Until the store answers `readings` readings from T0 on. (Not the device counts
        of /devices: the InfluxDB store counts a day-old message there only once the
        rollup has run over its hour again.)"""
        query = urllib.parse.urlencode({"start": T0.isoformat(), "limit": 10 * readings})

        def stored() -> bool:
            status, body = api_request(f"{self.url}/readings?{query}", token)
            return status == 200 and len(json.loads(body)) == readings

        wait_until(stored, 30, f"{readings} readings stored")

    def rss_kb(self) -> int:
        """The process's resident memory, as the kernel counts it."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(line.split()[1])


def start_collector(
    folder: Path,
    mosquitto: Any,
    processes: Processes,
    api: dict[str, Any] | None = None,
    **sections: Any,
) -> Collector:
    """`collector run` on its own port and files in `folder`, with `api` settings over the
    defaults and any other config sections; returned once it has subscribed."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_section = {"port": port, "users_path": str(folder / "users.sqlite")} | (api or {})
    config = collector_config(folder, mosquitto, f"collector-{port}", api=api_section, **sections)
    name = f"collector-{port}"
    process = processes.start(name, "collector", "run", "-c", str(config))
    wait_for_port(port, 60)  # a loaded machine takes its time to import the API
    wait_until(lambda: "subscribed to" in processes.log(name), 20, "collector subscribed")
    return Collector(config, port, process)


def publish_minutes(mosquitto: Any, count: int, device: str = "air-1") -> None:
    """`count` telemetry messages of one device, a minute apart from T0, pm10 = minute."""

    async def publish() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            for minute in range(count):
                msg = message(device, minute + 1, minute, pm10=float(minute))
                await client.publish(f"pq/v1/dd/{device}/telemetry", encode(msg), qos=1)

    asyncio.run(publish())


@dataclass
class Exchange:
    status: int
    response: bytes
    body_sent: int


def _complete(response: bytes) -> bool:
    head, found, body = response.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def push(port: int, head: str, parts: Sequence[bytes] = ()) -> Exchange:
    """Send `head` (request line and headers), then `parts` of the body as fast as the
    server takes them, reading its answer as it comes, like a client that ignores the
    answer: it stops when all is sent and answered, or the server closes the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode())
    queue = deque(memoryview(p) for p in parts)
    sent, response, sending = 0, b"", True
    deadline = time.monotonic() + 60
    with sock:
        while time.monotonic() < deadline:
            writing = sending and bool(queue)
            if not writing and _complete(response):
                break
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break
                response += data
            if writable:
                try:
                    n = sock.send(queue[0])
                except (BrokenPipeError, ConnectionResetError):
                    sending = False
                    continue
                sent += n
                queue[0] = queue[0][n:]
                if not queue[0]:
                    queue.popleft()
    status = int(response.split(b" ", 2)[1]) if response else 0
    return Exchange(status, response, sent)


def chunked(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"
