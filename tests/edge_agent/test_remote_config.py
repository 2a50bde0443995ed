"""The box's side of a push, in process: the watch after the restart and which sources a
push must have read. The whole path, with real processes, is
tests/system/test_remote_config.py."""

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from edge_agent.config import load_agent
from edge_agent.remote_config import (
    FOLDER,
    PREVIOUS,
    RESTARTING,
    PushRecord,
    _unchanged_sources,
    read_record,
    roll_back_unless_connected,
)


def write_config(path: Path, interval_s: float = 1, gateway_port: int = 5020) -> str:
    text = yaml.safe_dump(
        {
            "device": {"id": "air-rc-01", "site": "test-site", "kind": "air", "name": "bench"},
            "state_dir": "state",
            "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": gateway_port}],
            "sources": [
                {
                    "name": "aqms",
                    "type": "modbus",
                    "bus": "gw",
                    "unit": 1,
                    "profile": "pq-sim-air",
                    "interval_s": interval_s,
                }
            ],
        }
    )
    path.write_text(text)
    return text


def restarting(state: Path, deadline: float | None) -> PushRecord:
    record = PushRecord(
        id="a" * 32,
        nonce="a" * 32,
        issued=datetime.now(UTC),
        by="ops-lan",
        sha256="0" * 64,
        rollback_after_s=60,
        stage=RESTARTING,
        deadline=deadline,
    )
    (state / FOLDER).mkdir(parents=True)
    (state / FOLDER / "push.json").write_text(record.model_dump_json())
    return record


def test_a_start_after_the_deadline_puts_the_previous_config_back_at_once(tmp_path):
    config = tmp_path / "agent.yaml"
    pushed = write_config(config, interval_s=2)
    loaded = load_agent(config)
    restarting(loaded.config.state_dir, deadline=time.time() - 1)
    (loaded.config.state_dir / FOLDER / PREVIOUS).write_text("previous: config\n")

    stop = asyncio.Event()
    assert asyncio.run(roll_back_unless_connected(loaded, config, lambda: False, stop))
    assert stop.is_set()
    assert config.read_text() == "previous: config\n" != pushed
    record = read_record(loaded.config.state_dir)
    assert record is not None
    assert record.stage == "rolled_back"
    assert "did not reach the broker at 127.0.0.1:1883 within 60 s" in record.reason


def test_connected_in_time_the_push_is_applied_and_the_deadline_kept(tmp_path):
    config = tmp_path / "agent.yaml"
    write_config(config)
    loaded = load_agent(config)
    restarting(loaded.config.state_dir, deadline=None)
    answers = iter([False, False, True])

    async def watch() -> bool:
        return await roll_back_unless_connected(
            loaded, config, lambda: next(answers), asyncio.Event()
        )

    assert not asyncio.run(watch())
    record = read_record(loaded.config.state_dir)
    assert record is not None
    assert record.stage == "applied"
    assert record.deadline is not None
    assert record.deadline > time.time() + 50


def test_only_what_a_push_adds_or_changes_is_read_before_it_is_taken(tmp_path):
    for name, interval_s, port in (("a", 1, 5020), ("b", 30, 5020), ("c", 1, 502)):
        write_config(tmp_path / f"{name}.yaml", interval_s, port)
    running, slower, moved = (load_agent(tmp_path / f"{n}.yaml") for n in "abc")
    assert _unchanged_sources(slower.config, running.config) == {"aqms"}
    assert _unchanged_sources(moved.config, running.config) == set()
