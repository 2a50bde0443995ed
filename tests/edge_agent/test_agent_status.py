"""`edge-agent status` on a running agent: outbox depth, the last acknowledged publish,
each source's last value or its error; and a clear no when the agent is not running."""

import re
import time

import pytest
import yaml

from edge_agent.status import AgentStatus, read_status, write_status
from testbed.processes import run_cli
from testbed.waiting import free_port, wait_until


def test_status_shows_what_the_running_agent_reads_and_sends(
    tmp_path, mosquitto, processes, simulated_device
):
    sensor = simulated_device("1:pq-sim-air")
    state = tmp_path / "state"
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "air-1", "site": "dd", "kind": "air", "name": "Air 1"},
                "broker": {"host": mosquitto.host, "port": mosquitto.port},
                "state_dir": str(state),
                "buses": [
                    {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": sensor},
                    {"name": "dead", "type": "tcp", "host": "127.0.0.1", "port": free_port()},
                ],
                "sources": [
                    {"name": "aqms", "type": "modbus", "bus": "gw", "unit": 1,
                     "profile": "pq-sim-air", "interval_s": 1},
                    {"name": "noise", "type": "modbus", "bus": "dead", "unit": 1,
                     "profile": "pq-sim-noise", "interval_s": 1},
                ],
            }
        )
    )  # fmt: skip
    agent = processes.start("agent", "edge-agent", "run", "-c", str(config))

    def settled() -> bool:
        current = read_status(state)
        return bool(
            current
            and current.last_publish_at
            and all(s.last_value or s.last_error for s in current.sources)
        )

    # The agent rewrites its status every 5 s (edge_agent/status.py) and the first, at
    # its start, comes before any publish: this waits for the second.
    wait_until(settled, 20, "the agent's status")
    result = run_cli("edge-agent", "status", "-c", str(config))
    assert result.returncode == 0, result.stdout
    out = " ".join(result.stdout.split())
    assert "air-1 (air)" in out
    assert "broker connected" in out
    assert "last publish acknowledged" in out
    assert "last publish acknowledged never" not in out
    assert "message(s) waiting" in out
    aqms = next(line for line in result.stdout.splitlines() if "aqms" in line)
    assert "pm10" in aqms
    noise = next(line for line in result.stdout.splitlines() if "noise" in line)
    assert "never" in noise
    assert "127.0.0.1" in noise  # the error names where it could not read
    # Done with the agent. Stopped cleanly it would wait 5 s for the collector to confirm
    # what it sent last, and no collector runs here.
    agent.kill()
    agent.wait()


@pytest.mark.servers
def test_status_says_when_no_agent_has_written_lately(tmp_path):
    state = tmp_path / "state"
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "air-1", "site": "dd", "kind": "air", "name": "Air 1"},
                "state_dir": str(state),
            }
        )
    )
    missing = run_cli("edge-agent", "status", "-c", str(config))
    assert missing.returncode == 1
    assert "no agent status" in missing.stdout
    state.mkdir()
    old = AgentStatus(
        device="air-1", kind="air", pid=1, boot_id="b", started_at=time.time() - 3600,
        written_at=time.time() - 600, outbox_depth=12, outbox_dropped=0,
        broker_connected=False, last_publish_at=None, sources=[],
    )  # fmt: skip
    write_status(state, old)
    stale = run_cli("edge-agent", "status", "-c", str(config))
    assert stale.returncode == 1
    out = " ".join(stale.stdout.split())
    assert "12 message(s) waiting" in out
    # Written 600 s before the command started; the command itself takes a second or so.
    age = re.search(r"the status is (\d+) s old", out)
    assert age is not None, out
    assert 600 <= int(age[1]) <= 660
