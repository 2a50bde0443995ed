"""Remote configuration with real processes: a real Mosquitto, `edge-agent run` on a
simulated analyser, and `collector devices config push|show|diff|log` from the center.

A push is signed with the key `collector devices config key` made; the box checks it,
restarts on it and answers from the process after the restart, or goes back to its previous
config when that process cannot reach the broker."""

import asyncio
import re
from pathlib import Path

import pytest
import yaml

from collector.fleet.commands import send_command
from collector.fleet.config_push import config_push, load_signing_key
from edge_agent.status import read_status
from iotruntime.connection import BrokerSettings
from iotwire.config_push import DOCUMENT_ARG, signed_args
from iotwire.messages import CommandAck
from testbed.processes import Processes, run_cli
from testbed.servers import Mosquitto
from testbed.waiting import free_port, wait_until

pytestmark = pytest.mark.servers
DEVICE, SITE = "air-rc-01", "test-site"


class Box:
    """One field box on the bench and the center's commands to it."""

    def __init__(self, tmp: Path, broker: Mosquitto, processes: Processes, sensor: int) -> None:
        self.tmp, self.broker, self.processes = tmp, broker, processes
        self.sensor_port = sensor
        self.keys = tmp / "keys"
        made = run_cli("collector", "devices", "config", "key", "--out", str(self.keys))
        assert made.returncode == 0, made.stdout + made.stderr
        self.collector = tmp / "collector.yaml"
        self.collector.write_text(
            yaml.safe_dump(
                {
                    "broker": {"host": broker.host, "port": broker.port},
                    "store": {"kind": "sqlite", "path": str(tmp / "store.sqlite")},
                    "registry": {"path": str(tmp / "devices.sqlite")},
                    "ingest": {"client_id": "collector"},
                }
            )
        )
        self.state = tmp / "box" / "state"
        self.config = tmp / "box" / "agent.yaml"
        self.config.parent.mkdir()
        self.original = self.settings(interval_s=1)
        self.config.write_text(self.original)
        self.agent = processes.start("agent", "edge-agent", "run", "-c", str(self.config))
        self.boot = self.connected_boot("")

    def settings(
        self, interval_s: float = 1, broker_port: int | None = None, **extra: object
    ) -> str:
        return yaml.safe_dump(
            {
                "device": {"id": DEVICE, "site": SITE, "kind": "air", "name": "bench box"},
                "broker": {
                    "host": self.broker.host,
                    "port": broker_port or self.broker.port,
                    "keepalive_s": 5,
                    "reconnect_max_s": 1,
                },
                "state_dir": "state",
                "collector_key": str(self.keys / "config-signing.pub"),
                "buses": [
                    {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": self.sensor_port}
                ],
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
                **extra,
            },
            sort_keys=False,
        )

    def connected_boot(self, other_than: str, timeout_s: float = 40) -> str:
        """The boot id of the agent once it runs connected, a different one than given."""

        def up() -> bool:
            status = read_status(self.state)
            return status is not None and status.broker_connected and status.boot_id != other_than

        wait_until(up, timeout_s, "the agent connected")
        status = read_status(self.state)
        assert status is not None
        return status.boot_id

    def cli(self, *args: str, timeout_s: float = 60) -> tuple[int, str, str]:
        result = run_cli(
            "collector", "devices", "config", *args, "-c", str(self.collector), timeout_s=timeout_s
        )
        return result.returncode, result.stdout, result.stderr

    def push(self, text: str, *extra: str, key: Path | None = None) -> tuple[int, str]:
        path = self.tmp / "pushed.yaml"
        path.write_text(text)
        code, out, err = self.cli(
            "push", DEVICE, str(path), "--site", SITE, "--by", "ops-lan",
            "--key", str(key or self.keys / "config-signing.key"), *extra,
            timeout_s=180,
        )  # fmt: skip
        return code, " ".join((out + err).split())

    def show(self) -> str:
        code, out, err = self.cli("show", DEVICE, "--site", SITE)
        assert code == 0, out + err
        return out

    def ask(self, args: dict[str, str | int | float | bool], command_id: str) -> CommandAck:
        """Send a push made here, asking again until answered, as the CLI does."""
        broker = BrokerSettings(host=self.broker.host, port=self.broker.port)
        return asyncio.run(
            send_command(
                broker,
                SITE,
                DEVICE,
                "push_config",
                args,
                60,
                command_id=command_id,
                resend_every_s=2,
            )
        )


@pytest.fixture
def box(tmp_path, mosquitto, processes, simulated_device):
    made = Box(tmp_path, mosquitto, processes, simulated_device("1:pq-sim-air"))
    yield made
    made.agent.kill()  # no collector confirms here; a clean stop would wait for one
    made.agent.wait()


def test_a_good_config_is_applied_and_the_agent_runs_on_it(box):
    assert box.show() == box.original
    wanted = box.settings(interval_s=2)
    code, out = box.push(wanted)
    assert code == 0, out
    assert f"{DEVICE}, push " in out
    assert "applied: the agent restarted on it and reached the broker" in out
    assert box.connected_boot(box.boot) != box.boot
    assert box.config.read_text() == wanted
    running = box.show()
    assert running == wanted
    assert yaml.safe_load(running)["sources"][0]["interval_s"] == 2
    assert (box.state / "remote-config" / "previous.yaml").read_text() == box.original

    code, out, err = box.cli("log", DEVICE, "--csv")
    assert code == 0, err
    actions = [line.split(",")[4] for line in out.splitlines()[1:]]
    assert actions == ["pushed", "applied"]
    assert ",ops-lan," in out


def test_a_config_that_does_not_load_or_check_is_refused_and_the_old_one_runs_on(box):
    code, out = box.push(box.original.replace("interval_s: 1", "interval_s: oops"))
    assert code == 1
    assert "refused: it does not load: the pushed config: sources[0]" in out
    code, out = box.push(box.original.replace(f"id: {DEVICE}", "id: air-rc-99"))
    assert code == 1
    assert "refused: device.id would change from air-rc-01 to air-rc-99" in out
    dead = free_port()
    code, out = box.push(box.original.replace(f"port: {box.sensor_port}", f"port: {dead}"))
    assert code == 1
    assert "refused: check failed: sensor aqms" in out

    status = read_status(box.state)
    assert status is not None
    assert (status.boot_id, status.broker_connected) == (box.boot, True)
    assert box.config.read_text() == box.original
    assert box.show() == box.original
    code, out, _ = box.cli("log", DEVICE, "--csv")
    actions = [line.split(",")[4] for line in out.splitlines()[1:]]
    assert actions == ["pushed", "refused"] * 3


def test_a_config_the_box_cannot_reach_the_broker_on_is_rolled_back(box):
    wrong = free_port()
    code, out = box.push(box.settings(broker_port=wrong), "--rollback-after-s", "5")
    assert code == 1
    assert (
        f"rolled_back: the agent restarted on it but did not reach the broker at"
        f" 127.0.0.1:{wrong} within 5 s; the previous config is back" in out
    )
    assert box.config.read_text() == box.original
    box.connected_boot(box.boot)
    assert box.show() == box.original
    log = box.processes.log("agent")
    assert "pushed config rolled back" in log
    assert log.count("restarting with") == 2  # on the push, then back on the old config


def test_an_unsigned_tampered_or_replayed_push_is_refused(box, tmp_path):
    other = tmp_path / "other-keys"
    assert run_cli("collector", "devices", "config", "key", "--out", str(other)).returncode == 0
    code, out = box.push(box.settings(interval_s=3), key=other / "config-signing.key")
    assert code == 1
    assert "refused: the signature does not verify with this box's collector_key" in out

    key = load_signing_key(box.keys / "config-signing.key")
    first = config_push(DEVICE, box.settings(interval_s=2), "ops-lan", 60)
    args = signed_args(first, key)
    tampered = {
        **args,
        DOCUMENT_ARG: str(args[DOCUMENT_ARG]).replace("interval_s: 2", "interval_s: 9"),
    }
    ack = box.ask(tampered, "tampered-1")
    assert (ack.ok, ack.detail) == (
        False,
        "refused: the signature does not verify with this box's collector_key",
    )
    unsigned = box.ask({DOCUMENT_ARG: args[DOCUMENT_ARG]}, "unsigned-1")
    assert unsigned.detail == "refused: unsigned: the push needs a document and its signature"

    # The first push, answered by the process restarted on it; asked again, the box
    # repeats its answer and does nothing more.
    ack = box.ask(args, first.nonce)
    assert (ack.id, ack.ok, ack.detail.split(":")[0]) == (first.nonce, True, "applied")
    boot = box.connected_boot(box.boot)
    again = box.ask(args, first.nonce)
    assert (again.ok, again.detail) == (ack.ok, ack.detail)
    assert read_status(box.state).boot_id == boot  # not restarted again
    code, out = box.push(box.settings(interval_s=4))
    assert code == 0, out
    boot = box.connected_boot(boot)
    # The first push replayed after the second: refused, the box stays on the second.
    ack = box.ask(args, "replay-1")
    assert not ack.ok
    assert re.search(
        r"refused: issued .* not after the last push this box took .* replayed", ack.detail
    )
    assert read_status(box.state).boot_id == boot
    assert yaml.safe_load(box.show())["sources"][0]["interval_s"] == 4


def test_show_prints_the_running_config_and_diff_what_a_push_would_change(box, tmp_path):
    code, out, err = box.cli("show", DEVICE, "--site", SITE)
    assert code == 0
    assert out == box.original
    assert f"{box.config}, sha256 " in err
    assert "last push: none" in err

    same = tmp_path / "same.yaml"
    same.write_text(box.original)
    code, out, err = box.cli("diff", DEVICE, str(same), "--site", SITE)
    assert (code, out) == (0, "")
    assert f"{DEVICE} runs {same} as it is" in err

    changed = tmp_path / "changed.yaml"
    changed.write_text(box.settings(interval_s=5))
    code, out, err = box.cli("diff", DEVICE, str(changed), "--site", SITE)
    assert code == 1, err
    lines = out.splitlines()
    assert lines[:2] == [f"--- {DEVICE} (running)", f"+++ {changed}"]
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        "-  interval_s: 1",
        "+  interval_s: 5",
    ]
