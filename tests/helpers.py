"""Helpers only the tests share: where things are, the collector's metrics, a camera's plate
read, and one request to the test's own API server."""

import http.client
import socket
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from collector.config import load_collector
from iotwire.messages import ClockSync, Health, PlateRead

TESTS = Path(__file__).parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
"""Captured command output the tests read (iw, hostapd)."""


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


def health(seq: int, device: str = "dev-1", epoch: str | None = None, **worse: Any) -> Health:
    """A box's health message with nothing wrong in it but the fields `worse` sets."""
    fields: dict[str, Any] = {
        "ts": datetime(2026, 11, 22, tzinfo=UTC),
        "clock": ClockSync.SYNCED,
        "boot_id": "b1",
        "uptime_s": 1.0,
        "load1": 0.1,
        "mem_used_pct": 10.0,
        "disk_used_pct": 10.0,
        "outbox_depth": 0,
        "outbox_dropped": 0,
        "source_errors": {},
    }
    return Health(device=device, seq=seq, epoch=epoch, **(fields | worse))


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


class EventStream:
    """An SSE client on a plain HTTP connection: collects (id, event, data) as they come."""

    def __init__(
        self, port: int, token: str, last_event_id: str | None = None, path: str = "/alerts/stream"
    ) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.status = 0
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self._connection.request("GET", path, headers=headers)
        self._response = self._connection.getresponse()
        self.status = self._response.status
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in self._response:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if "data" in fields:
                        self.events.append(
                            (fields.get("id", ""), fields.get("event", ""), fields["data"])
                        )
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except (OSError, ValueError):
            return

    def wait_closed(self, timeout_s: float) -> None:
        """Until the server ends the stream; TimeoutError if it keeps it open."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the stream is still open after {timeout_s:g} s")

    def close(self) -> None:
        """Hang up, and wait for the reader to see it."""
        if self._connection.sock is not None:
            self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._connection.close()


def air_agent_config(folder: Path, broker: Any, modbus_port: int, device: str = "air-1") -> Path:
    """`folder`/agent.yaml: a real agent reading a simulated air station (`edge-agent
    simulate 1:pq-sim-air`) every second and sending to `broker`."""
    path = folder / "agent.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "device": {"id": device, "site": "dd", "kind": "air", "name": "Air 1"},
                "broker": {"host": broker.host, "port": broker.port},
                "state_dir": str(folder / "agent-state"),
                "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": modbus_port}],
                "sources": [
                    {"name": "aqms", "type": "modbus", "bus": "gw", "profile": "pq-sim-air",
                     "interval_s": 1}
                ],
            }
        )
    )  # fmt: skip
    return path
