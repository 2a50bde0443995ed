"""Supervision: the unit files pass `systemd-analyze verify`, and both programs tell a
(real, test-owned) notify socket they are ready, keep the watchdog fed from their event
loop, and say they are stopping."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from testbed.processes import BIN
from tests.helpers import REPO

pytestmark = pytest.mark.servers

UNITS = REPO / "systemd"


@pytest.mark.parametrize(
    ("unit", "venv"), [("edge-agent", "/opt/edge-agent/venv"), ("collector", "/opt/collector/venv")]
)
def test_the_unit_file_verifies_cleanly(tmp_path, unit, venv):
    # verify insists the ExecStart program exists: point it at this checkout's.
    text = (UNITS / f"{unit}.service").read_text().replace(venv, str(BIN.parent))
    copy = tmp_path / f"{unit}.service"
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if copy.name in line
    ]
    assert (result.returncode, complaints) == (0, [])
    for directive in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "PrivateTmp=true",
        f"StateDirectory={unit}",
        f"User={unit}",
    ):
        assert directive in text


def notifications(command: list[str], tmp_path: Path, seconds: float) -> list[str]:
    """Run `command` under a notify socket with a 0.2 s watchdog until `seconds` after it
    says READY (its start-up, about 1.2 s for the collector, is not the watchdog's
    business), then stop it with SIGTERM; every message it sent."""
    address = str(tmp_path / "notify.sock")
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(0.1)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
        log = (tmp_path / "run.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30  # to say READY; then `seconds` more
        stopping_sent = False
        while time.monotonic() < deadline + 10:
            if time.monotonic() > deadline and not stopping_sent:
                process.terminate()
                stopping_sent = True
            try:
                received.append(sock.recv(1024).decode())
                if received[-1] == "READY=1" and received.count("READY=1") == 1:
                    deadline = time.monotonic() + seconds
            except TimeoutError:
                if stopping_sent and process.poll() is not None:
                    break
        process.wait(10)
    return received


def test_the_agent_says_ready_feeds_the_watchdog_and_says_stopping(tmp_path, mosquitto):
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "air-1", "site": "dd", "kind": "air", "name": "Air 1"},
                "broker": {"host": mosquitto.host, "port": mosquitto.port},
                "state_dir": str(tmp_path / "state"),
            }
        )
    )
    sent = notifications([str(BIN / "edge-agent"), "run", "-c", str(config)], tmp_path, 2.0)
    assert sent[0] == "READY=1"
    assert sent.count("WATCHDOG=1") >= 16  # every 0.1 s for 2 s after READY: 20, less room
    assert sent[-1] == "STOPPING=1"


def test_the_collector_says_ready_feeds_the_watchdog_and_says_stopping(tmp_path, mosquitto):
    config = tmp_path / "collector.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "broker": {"host": mosquitto.host, "port": mosquitto.port},
                "store": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")},
            }
        )
    )
    sent = notifications([str(BIN / "collector"), "run", "-c", str(config)], tmp_path, 2.0)
    assert sent[0] == "READY=1"
    assert sent.count("WATCHDOG=1") >= 16
    assert sent[-1] == "STOPPING=1"
