"""Fault tests with real processes: simulated analysers, `edge-agent` and `collector`
processes and a real Mosquitto (and InfluxDB), broken on purpose. Each test counts what the
agents produced, what the store holds, the rows stored twice and the gaps, prints them and
proves that every committed message arrived exactly once."""

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from collector.config import load_collector
from collector.stores import open_store
from testbed.processes import alive, children
from testbed.waiting import wait_until
from tests.helpers import metrics
from tests.system.fleet import Fleet, account, fleet, sqlite

pytestmark = pytest.mark.servers


def test_broker_stopped_for_15_s_while_agents_keep_sampling(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    devices = ["air-a", "air-b"]
    agents = {d: f.start_agent(d, f.agent_config(d)) for d in devices}
    time.sleep(3)
    mosquitto.stop()
    time.sleep(15)
    mosquitto.start()
    for d in devices:  # backoff with jitter: each agent comes back in its own time
        wait_until(lambda d=d: processes.log(d).count("connected to") == 2, 20, f"{d} back")
    time.sleep(2)
    produced = {d: f.stop_agent(agents[d], d) for d in devices}
    assert all(n > 15 / 0.2 for n in produced.values())  # they sampled through the outage
    account(open_store(load_collector(config)), produced)
    # What waited out the outage (more than the default 10 s) reached the collector marked
    # as backlog; the rest live.
    counts = metrics(config)
    backlog, stored = (
        counts["collector_messages_backlog_total"],
        counts["collector_messages_stored_total"],
    )
    print(f"backlog {backlog:.0f} of {stored:.0f} stored")
    assert 2 * (15 - 10) / 0.2 * 0.9 < backlog < stored


def test_agent_killed_with_sigkill_while_publishing(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    agent_config = f.agent_config("air-a")
    for _ in range(3):
        agent = f.start_agent("air-a", agent_config)
        time.sleep(2)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    agent = f.start_connected_agent("air-a", agent_config)
    time.sleep(2)
    produced = {"air-a": f.stop_agent(agent, "air-a")}
    account(open_store(load_collector(config)), produced)


def kill_twice_while_ingesting(
    f: Fleet, kill: Callable[[subprocess.Popen[bytes], Path], None], store: dict | None = None
) -> Path:
    """A collector ingesting one agent's stream into `store` (SQLite by default), `kill`
    applied to it (and its config) twice, two seconds apart; the agent then stops and the
    store is accounted for."""
    config = f.collector_config("collector", store or sqlite(f.tmp))
    f.collectors = [f.start_collector("collector", config)]
    agent = f.start_agent("air-a", f.agent_config("air-a"))
    for _ in range(2):
        time.sleep(2)
        kill(f.collectors[-1], config)
    time.sleep(2)
    produced = {"air-a": f.stop_agent(agent, "air-a")}
    account(open_store(load_collector(config)), produced)
    return config


def test_collector_killed_with_sigkill_while_ingesting(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)

    def kill(collector: subprocess.Popen[bytes], config: Path) -> None:
        [committer] = children(collector.pid)  # its commit process
        collector.send_signal(signal.SIGKILL)
        collector.wait(10)
        # The commit process sees its pipe close and ends: no orphan holds the store.
        wait_until(lambda: not alive(committer), 10, "committer to end")
        time.sleep(2)
        f.collectors.append(f.start_collector("collector", config))

    config = kill_twice_while_ingesting(f, kill)
    # The agent never lost its broker: nothing it sent was late enough to be backlog.
    assert metrics(config)["collector_messages_backlog_total"] == 0


@pytest.mark.parametrize("kind", ["sqlite", "influxdb"])
def test_commit_process_killed_with_sigkill_is_started_again(
    kind, request, tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    store = sqlite(tmp_path)
    if kind == "influxdb":  # killed with batches begun and unanswered on the server
        url = request.getfixturevalue("influxd").url
        store = {"kind": "influxdb", "url": url, "api": "v1", "database": "killed"}

    def kill(collector: subprocess.Popen[bytes], _: Path) -> None:
        [committer] = children(collector.pid)
        os.kill(committer, signal.SIGKILL)
        wait_until(
            lambda: children(collector.pid) not in ([], [committer]), 30, "a new commit process"
        )

    kill_twice_while_ingesting(f, kill, store)
    [collector] = f.collectors
    assert collector.poll() is None, processes.log("collector")  # it never went down
    assert processes.log("collector").count("starting it again") == 2


def test_influxdb_stopped_for_15_s_spools_then_drains(
    tmp_path, mosquitto, processes, simulated_device, own_influxd
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    store = {"kind": "influxdb", "url": own_influxd.url, "api": "v1", "retry_for_s": 1}
    config = f.collector_config("collector", store, spool_path=str(tmp_path / "spool.sqlite"))
    f.start_collector("collector", config)
    agent = f.start_agent("air-a", f.agent_config("air-a"))
    time.sleep(3)
    own_influxd.stop()
    time.sleep(15)
    during = metrics(config)
    own_influxd.start()
    time.sleep(3)
    produced = {"air-a": f.stop_agent(agent, "air-a")}
    account(open_store(load_collector(config)), produced)
    after = metrics(config)
    print(f"spooled {after['collector_messages_spooled_total']:.0f}")
    assert during["collector_spool_depth"] > 50
    assert during["collector_store_up"] == 0
    assert after["collector_spool_depth"] == 0
    assert after["collector_messages_spooled_total"] >= during["collector_spool_depth"]


def test_two_collectors_share_a_subscription_and_one_is_killed(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    store = sqlite(tmp_path)
    configs = {n: f.collector_config(n, store, share_group="ops") for n in ("col-a", "col-b")}
    collectors = {n: f.start_collector(n, c) for n, c in configs.items()}
    assert all("(MQTT 3.1.1)" in processes.log(n) for n in collectors)  # the collector default
    devices = ["air-a", "air-b", "air-c"]
    agents = {d: f.start_agent(d, f.agent_config(d)) for d in devices}
    time.sleep(3)
    both = metrics(configs["col-b"])["collector_messages_stored_total"]
    assert both > 0  # the load is shared
    collectors["col-a"].send_signal(signal.SIGKILL)
    collectors["col-a"].wait(10)
    time.sleep(4)
    alone = metrics(configs["col-b"])["collector_messages_stored_total"]
    assert alone > both + 2 * len(devices)  # the survivor carries on
    f.start_collector("col-a", configs["col-a"])
    # What the dead one held unconfirmed (its session ended with it) comes again, once
    # the boxes hear later messages confirmed.
    back = time.time()
    for d in devices:
        wait_until(lambda d=d: f.confirmed_before(d, back), 60, f"{d}'s outbox confirmed")
    produced = {d: f.stop_agent(agents[d], d) for d in devices}
    account(open_store(load_collector(configs["col-b"])), produced)


def test_a_long_outage_on_a_small_disk_drops_by_policy_and_says_how_many(
    tmp_path, mosquitto, processes, simulated_device
):
    # A day's backlog on a box with little room, compressed: samples every 0.05 s into an
    # outbox bounded at 200 kB (pages in use and write-ahead log), with the broker gone
    # for 12 s.
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    agent_config = f.agent_config("air-a", interval_s=0.05, outbox={"max_mb": 0.2})
    agent = f.start_connected_agent("air-a", agent_config)  # the outage starts after a start
    time.sleep(2)
    mosquitto.stop()
    largest = 0
    for _ in range(24):
        time.sleep(0.5)
        outbox = f.outbox("air-a")
        largest = max(largest, outbox.size_bytes())
        outbox.close()
    mosquitto.start()
    wait_until(lambda: processes.log("air-a").count("connected to") == 2, 20, "agent back")
    time.sleep(2)
    produced = {"air-a": f.stop_agent(agent, "air-a")}
    outbox = f.outbox("air-a")
    dropped = {"air-a": outbox.dropped()}
    outbox.close()
    print(f"largest outbox {largest} bytes, dropped {dropped['air-a']}")
    assert largest <= 200_000
    assert dropped["air-a"] > 0
    account(open_store(load_collector(config)), produced, dropped)


def test_malformed_oversized_and_wrong_version_payloads_mixed_into_the_stream(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    agent = f.start_agent("air-a", f.agent_config("air-a"))
    topic = "pq/v1/test-site/air-a/telemetry"
    bad = [
        (topic, b"{not json"),
        (topic, b'{"v":2,"kind":"telemetry","device":"air-a","seq":1}'),
        (topic, b"x" * 300_000),
        (topic, b"\x00\xff" * 10),
        ("pq/v1/test-site/air-b/telemetry", b'{"v":1,"kind":"health"}'),
    ]

    async def inject() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="vandal") as c:
            for _ in range(20):
                for t, payload in bad:
                    await c.publish(t, payload, qos=1)
                await asyncio.sleep(0.1)

    asyncio.run(inject())
    produced = {"air-a": f.stop_agent(agent, "air-a")}
    account(open_store(load_collector(config)), produced)
    counts = metrics(config)
    invalid = {
        name.split('reason="')[1].rstrip('"}'): value
        for name, value in counts.items()
        if name.startswith("collector_messages_invalid_total{")
    }
    print(f"dropped {invalid}")
    assert sum(invalid.values()) == 20 * len(bad)
    assert invalid["bad_json"] == 40  # the unparsable text and the binary garbage
    assert invalid["too_large"] == 20
    assert invalid["wrong_version"] == 20
    assert invalid["wrong_kind"] == 20  # a health payload on a telemetry topic
