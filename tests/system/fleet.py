"""The fleet the delivery fault tests break: simulated analysers, `edge-agent` and
`collector` processes on one real broker, and the accounting that proves what arrived."""

import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from collector.query import ReadingQuery
from collector.stores import Store
from edge_agent.outbox import Outbox
from edge_agent.profiles import builtin_profiles_dir, load_profile
from testbed.processes import Processes
from testbed.servers import Mosquitto
from testbed.waiting import free_port, wait_until

AIR_POINTS = len(load_profile(builtin_profiles_dir() / "pq-sim-air.yaml").points)


@dataclass
class Fleet:
    """Agents on simulated analysers and collectors, all wired to one broker."""

    tmp: Path
    broker: Mosquitto
    processes: Processes
    simulated_device: object
    collectors: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _log_from: dict[str, int] = field(default_factory=dict)  # each agent's latest start

    def write(self, name: str, data: dict) -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(data))
        return path

    def collector_config(self, name: str, store: dict, **ingest: object) -> Path:
        return self.write(
            f"{name}.yaml",
            {
                "broker": {
                    "host": self.broker.host,
                    "port": self.broker.port,
                    "reconnect_max_s": 5,
                },
                "store": store,
                "ingest": {"client_id": name, **ingest},
                "metrics": {"port": free_port()},
            },
        )

    def start_collector(self, name: str, config: Path) -> subprocess.Popen[bytes]:
        before = self.subscriptions(name)
        process = self.processes.start(name, "collector", "run", "-c", str(config))
        wait_until(lambda: self.subscriptions(name) > before, 20, f"{name} subscribed")
        return process

    def subscriptions(self, name: str) -> int:
        """How many sessions the collector `name` has subscribed in, by its log."""
        try:
            return self.processes.log(name).count("subscribed to")
        except FileNotFoundError:
            return 0

    def agent_config(self, device: str, interval_s: float = 0.2, **extra: object) -> Path:
        port = self.simulated_device("1:pq-sim-air")
        return self.write(
            f"{device}.yaml",
            {
                "device": {"id": device, "site": "test-site", "kind": "air", "name": device},
                "broker": {
                    "host": self.broker.host,
                    "port": self.broker.port,
                    "keepalive_s": 5,
                    "reconnect_max_s": 5,
                },
                "state_dir": str(self.tmp / device),
                "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": port}],
                "sources": [
                    {
                        "name": "aqms",
                        "type": "modbus",
                        "bus": "gw",
                        "profile": "pq-sim-air",
                        "interval_s": interval_s,
                    }
                ],
                "health": {"interval_s": 1},
                **extra,
            },
        )

    def start_agent(self, device: str, config: Path) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{device}.log"
        self._log_from[device] = len(self.processes.log(device)) if log.exists() else 0
        return self.processes.start(device, "edge-agent", "run", "-c", str(config))

    def start_connected_agent(self, device: str, config: Path) -> subprocess.Popen[bytes]:
        """Start the agent and wait until it is connected."""
        agent = self.start_agent(device, config)
        self._wait_connected(device)
        return agent

    def _wait_connected(self, device: str) -> None:
        """Until the agent's latest start has connected: a SIGTERM while its interpreter
        still imports ends it by the signal, not by its clean stop, and a loaded machine
        can take seconds to import it."""
        since = self._log_from.get(device, 0)
        wait_until(lambda: "connected to" in self.processes.log(device)[since:], 60, f"{device} up")

    def stop_agent(self, agent: subprocess.Popen[bytes], device: str) -> int:
        """Stop cleanly, so the outbox drains; returns how many messages it produced. The
        stop waits until what the box made so far is confirmed: a box stopped the moment
        it connects (a loaded machine took seconds to start it) keeps what the collector
        had no time to confirm, rightly, for its next start."""
        self._wait_connected(device)
        moment = time.time()
        wait_until(lambda: self.confirmed_before(device, moment), 60, f"{device} confirmed")
        agent.send_signal(signal.SIGTERM)
        try:
            code = agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.send_signal(signal.SIGABRT)
            agent.wait(10)
            log = self.processes.log(device)
            raise AssertionError(f"{device} still running 30 s after SIGTERM:\n{log}") from None
        assert code == 0, self.processes.log(device)
        outbox = self.outbox(device)
        produced, left = outbox.last_seq(), outbox.depth()
        outbox.close()
        assert left == 0
        return produced

    def outbox(self, device: str) -> Outbox:
        return Outbox(self.tmp / device / "outbox.sqlite")

    def confirmed_before(self, device: str, moment: float) -> bool:
        """The running agent's outbox holds nothing made before `moment` (a time.time()):
        every message before it was confirmed, the ones lost on the way sent again. Read
        with a connection of its own, read-only, beside the agent's."""
        path = self.tmp / device / "outbox.sqlite"
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            (old,) = db.execute(
                "SELECT count(*) FROM outbox WHERE created < ?", (moment,)
            ).fetchone()
        finally:
            db.close()
        return int(old) == 0


def account(store: Store, produced: dict[str, int], dropped: dict[str, int] | None = None) -> None:
    """Wait until the store holds every produced message the outbox kept, then prove it
    holds each once and that what is missing is exactly what the outbox dropped."""
    dropped = dropped or dict.fromkeys(produced, 0)
    expected = {d: produced[d] - dropped[d] for d in produced}

    def stored() -> dict[str, int]:
        return {d.device: d.messages for d in store.devices()}

    wait_until(lambda: stored() == expected, 60, f"store to hold {expected}")
    rows = store.query(ReadingQuery(limit=10_000_000))
    keys = [(r.device, r.sensor, r.parameter, r.ts) for r in rows]
    for device in store.devices():
        samples = {r.ts for r in rows if r.device == device.device}
        print(
            f"{device.device}: produced {produced[device.device]}, stored {device.messages},"
            f" duplicates delivered {device.duplicates}, rows stored twice"
            f" {len(keys) - len(set(keys))}, gaps {device.gaps}, samples {len(samples)},"
            f" dropped by the outbox {dropped[device.device]}"
        )
        assert device.messages == expected[device.device]
        assert device.gaps == dropped[device.device]
        # Each sample holds all its readings: nothing half-stored, nothing stored twice.
        assert sum(1 for r in rows if r.device == device.device) == AIR_POINTS * len(samples)
    assert len(keys) == len(set(keys))


def fleet(tmp_path, mosquitto, processes, simulated_device) -> Fleet:
    return Fleet(tmp_path, mosquitto, processes, simulated_device)


def sqlite(tmp_path: Path) -> dict:
    return {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")}
