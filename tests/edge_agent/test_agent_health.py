"""The agent's health message reports what went wrong, per source and per bus."""

import asyncio

import pytest
import yaml

from edge_agent.agent import Agent
from edge_agent.config import load_agent
from edge_agent.modbus.simulator import serve_tcp
from edge_agent.poller import poll
from edge_agent.profiles import builtin_profiles_dir, load_profile
from iotwire import decode
from iotwire.messages import Health, Quality, Telemetry
from iotwire.topics import Channel
from testbed.waiting import free_port

pytestmark = pytest.mark.servers  # a pymodbus server


def test_health_counts_the_errors_of_a_unit_that_answers_with_exceptions(tmp_path):
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "air-h-01", "site": "test", "kind": "air", "name": "health test"},
                "state_dir": str(tmp_path / "state"),
                "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": port}],
                "sources": [
                    {
                        "name": "aqms",
                        "type": "modbus",
                        "bus": "gw",
                        "unit": 9,
                        "profile": "pq-sim-air",
                    }
                ],
            }
        )
    )
    loaded = load_agent(config)

    async def main() -> tuple[Health, list[Telemetry]]:
        # The gateway answers, but has no unit 9: every read gets an exception response.
        server = await serve_tcp(
            {1: load_profile(builtin_profiles_dir() / "pq-sim-air.yaml")}, "127.0.0.1", port
        )
        agent, stop = Agent(loaded), asyncio.Event()
        stats = agent.source_stats["aqms"]
        task = asyncio.create_task(
            poll(agent.readers["aqms"], 0.3, stats, agent._commit_sample, stop)
        )
        await asyncio.sleep(1.3)
        stop.set()
        task.cancel()
        agent._commit_health()
        entries = agent.outbox.peek(100)
        agent.outbox.close()
        for bus in agent.buses.values():
            bus.close()
        await server.shutdown()
        telemetry = [
            decode(e.payload, Telemetry) for e in entries if e.channel is Channel.TELEMETRY
        ]
        [health] = [decode(e.payload, Health) for e in entries if e.channel is Channel.HEALTH]
        return health, telemetry

    health, telemetry = asyncio.run(main())
    print("health", health.source_errors, health.bus_errors, "samples", len(telemetry))
    assert len(telemetry) >= 3
    assert health.source_errors == {"aqms": len(telemetry)}
    assert health.bus_errors == {"gw": len(telemetry)}
    assert all(r.quality is Quality.FAULT for t in telemetry for s in t.samples for r in s.readings)
