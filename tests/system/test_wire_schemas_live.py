"""What a real agent sends, and what a real collector answers, validates against the
published JSON Schemas (docs/wire/): another vendor's box that follows them speaks the
same wire."""

import asyncio
import json
import time
from collections import Counter

import aiomqtt
import jsonschema
import pytest

from iotwire.schemas import wire_schema
from tests.system.fleet import fleet, sqlite

pytestmark = pytest.mark.servers


def test_an_agents_and_a_collectors_messages_validate_against_the_schemas(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    f.start_collector("collector", f.collector_config("collector", sqlite(tmp_path)))
    seen: Counter[str] = Counter()

    async def watch() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe("pq/v1/#", qos=1)
            agent = f.start_agent("air-a", f.agent_config("air-a"))
            deadline = time.monotonic() + 6
            async for message in client.messages:
                channel = str(message.topic).split("/")[-1]
                payload = json.loads(bytes(message.payload))
                jsonschema.validate(
                    payload,
                    wire_schema(channel),
                    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
                )
                seen[channel] += 1
                if time.monotonic() > deadline and agent.poll() is None:
                    f.stop_agent(agent, "air-a")
                if agent.poll() is not None and seen["status"] >= 2:
                    return

    asyncio.run(asyncio.wait_for(watch(), 40))
    assert seen["telemetry"] > 10
    assert seen["committed"] >= 1
    assert seen["status"] >= 2  # online, then offline at the clean stop
