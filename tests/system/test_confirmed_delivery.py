"""The faults a broker's acknowledgement cannot cover, with real agents, collectors and
Mosquitto: the broker killed with messages in memory, a box's state wiped, a disk that
fills, a collector of a share group that dies. Each counts what the agents produced and
what the store holds, and requires that nothing was lost: boxes keep every message until
the collector confirms it is committed, and send again what stays unconfirmed."""

import shutil
import signal
import time

import pytest

from collector.config import load_collector
from collector.stores import open_store
from testbed.disks import small_filesystem
from testbed.waiting import wait_until
from tests.system.fleet import account, fleet, sqlite

# Each fault is timed against a live system (a failover within 30 s, a clean stop that
# waits 5 s for confirmations, a 0.8 MB partition whose room depends on when SQLite
# checkpoints): they run alone after the parallel tests (`make test`).
pytestmark = [pytest.mark.servers, pytest.mark.solo]

QUICK_RESEND = {"outbox": {"resend_after_s": 2}}


def influxdb(url: str, database: str) -> dict:
    return {"kind": "influxdb", "url": url, "api": "v1", "database": database}


@pytest.mark.parametrize("kind", ["sqlite", "influxdb"])
def test_broker_killed_while_the_collector_is_down_loses_nothing(
    kind, request, tmp_path, mosquitto, processes, simulated_device
):
    # The broker acknowledged what the agents sent and held it for the absent collector,
    # in memory: SIGKILL takes it. The agents still have it, unconfirmed, and send it again.
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    store = sqlite(tmp_path)
    if kind == "influxdb":
        store = influxdb(request.getfixturevalue("influxd").url, "broker_killed")
    config = f.collector_config("collector", store)
    collector = f.start_collector("collector", config)
    devices = ["air-a", "air-b"]
    agents = {d: f.start_agent(d, f.agent_config(d, **QUICK_RESEND)) for d in devices}
    time.sleep(3)
    collector.send_signal(signal.SIGTERM)
    assert collector.wait(20) == 0
    time.sleep(5)
    mosquitto.kill()
    mosquitto.start()
    f.start_collector("collector", config)
    back = time.time()
    for d in devices:
        wait_until(lambda d=d: f.confirmed_before(d, back), 60, f"{d}'s backlog confirmed")
    produced = {d: f.stop_agent(agents[d], d) for d in devices}
    assert all(n > 8 / 0.2 for n in produced.values())
    account(open_store(load_collector(config)), produced)


def test_broker_killed_twice_while_the_collector_runs_loses_nothing(
    tmp_path, mosquitto, processes, simulated_device
):
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    devices = ["air-a", "air-b"]
    agents = {d: f.start_agent(d, f.agent_config(d, **QUICK_RESEND)) for d in devices}
    for _ in range(2):
        time.sleep(3)
        mosquitto.kill()
        mosquitto.start()
    # The collector comes back by itself, subscribing anew: its session went with the
    # broker's memory.
    wait_until(lambda: f.subscriptions("collector") >= 3, 30, "the collector back")
    back = time.time()
    for d in devices:
        wait_until(lambda d=d: f.confirmed_before(d, back), 60, f"{d}'s backlog confirmed")
    produced = {d: f.stop_agent(agents[d], d) for d in devices}
    account(open_store(load_collector(config)), produced)


def test_a_box_whose_state_is_lost_starts_a_new_epoch_and_nothing_is_a_duplicate(
    tmp_path, mosquitto, processes, simulated_device
):
    # A new SD card: the box's sequence numbers start at 1 again, in a new epoch.
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    agent_config = f.agent_config("air-a")
    produced = 0
    for _ in range(2):
        agent = f.start_agent("air-a", agent_config)
        time.sleep(3)
        produced += f.stop_agent(agent, "air-a")
        shutil.rmtree(tmp_path / "air-a")
    store = open_store(load_collector(config))
    account(store, {"air-a": produced})
    [device] = store.devices()
    assert device.duplicates == 0
    assert device.state_resets == 1


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB filesystem for the box's state, as on a small SD card partition."""
    with small_filesystem(tmp_path / "air-a") as mount:
        yield mount


def test_a_disk_that_fills_during_an_outage_drops_by_policy_and_drains_after(
    tmp_path, small_disk, mosquitto, processes, simulated_device
):
    # The partition is partly taken already (logs, an old image): 0.8 MB left, and the
    # outbox's own bound (100 MB by default) far beyond it. Samples every 50 ms fill it
    # within the outage.
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    config = f.collector_config("collector", sqlite(tmp_path))
    f.start_collector("collector", config)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (5 * 1024 * 1024 - 800 * 1024))
    agent_config = f.agent_config("air-a", interval_s=0.05, **QUICK_RESEND)
    agent = f.start_agent("air-a", agent_config)
    time.sleep(2)
    mosquitto.stop()
    time.sleep(20)
    assert agent.poll() is None, processes.log("air-a")  # it kept running
    mosquitto.start()
    back = time.time()
    wait_until(lambda: f.confirmed_before("air-a", back), 60, "the outbox drained")
    # Then keeping up: drops show at the collector as gaps only once a later message
    # arrives, so a box stopped while still over its bound would leave its last drops
    # uncounted there until it sends again.
    caught_up = time.time() + 2
    wait_until(
        lambda: time.time() > caught_up and f.confirmed_before("air-a", caught_up),
        30,
        "the box keeping up",
    )
    produced = {"air-a": f.stop_agent(agent, "air-a")}
    outbox = f.outbox("air-a")
    dropped = {"air-a": outbox.dropped()}
    outbox.close()
    log = processes.log("air-a")
    print(f"dropped {dropped['air-a']} of {produced['air-a']}")
    assert dropped["air-a"] > 0
    # It used the room there was: 0.8 MB less the 0.5 MB it leaves free holds a couple
    # of hundred of these messages with their pages and log.
    assert produced["air-a"] - dropped["air-a"] > 150
    assert "Traceback" not in log
    account(open_store(load_collector(config)), produced, dropped)


def test_one_of_two_shared_collectors_killed_its_share_arrives_within_30_s(
    tmp_path, mosquitto, processes, simulated_device
):
    # Default resend timing: this is the failover an operator gets.
    f = fleet(tmp_path, mosquitto, processes, simulated_device)
    store = sqlite(tmp_path)
    configs = {n: f.collector_config(n, store, share_group="ops") for n in ("col-a", "col-b")}
    collectors = {n: f.start_collector(n, c) for n, c in configs.items()}
    devices = ["air-a", "air-b", "air-c"]
    agents = {d: f.start_agent(d, f.agent_config(d)) for d in devices}
    time.sleep(3)
    collectors["col-a"].send_signal(signal.SIGKILL)
    collectors["col-a"].wait(10)
    killed = time.monotonic()
    # What the agents send from now on must reach the survivor alone, and what the dead
    # one held unconfirmed must come again: every message made in the 6 s after the kill
    # confirmed.
    time.sleep(6)
    moment = time.time()
    for d in devices:
        wait_until(lambda d=d: f.confirmed_before(d, moment), 40, f"{d}'s outbox confirmed")
    took = time.monotonic() - killed
    print(f"every message made up to 6 s after the kill confirmed {took:.1f} s after it")
    assert took < 30
    produced = {d: f.stop_agent(agents[d], d) for d in devices}
    account(open_store(load_collector(configs["col-b"])), produced)
