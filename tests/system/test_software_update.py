"""Issue #25, item 4: software updates in waves, with real processes throughout.

Two releases are built from copies of this tree by scripts/build_bundle.py (the bundles a
technician would make): 0.1.1, good, and 0.1.2, whose agent exits at import. They go on
the collector's shelf (`collector releases add`), are served by a real HTTP server, and
are offered by `collector releases rollout` to two boxes (`edge-agent run` on simulated
analysers, through a real Mosquitto) one per wave. The broken release is tried on the
first box, rolled back, and never offered to the second; the good one ends up running on
both, from its own virtualenv, in the same process, and `collector devices list` shows it.
"""

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from collector.fleet.registry import Registry
from edge_agent import __version__
from edge_agent.status import read_status
from iotruntime.registration import Registration
from testbed.processes import Processes, run_cli
from testbed.servers import Mosquitto
from testbed.waiting import free_port, wait_for_port, wait_until
from tests.helpers import REPO, metrics

pytestmark = pytest.mark.servers
SITE = "test-site"
BOXES = ("air-up-01", "air-up-02")
GOOD, BROKEN = "0.1.1", "0.1.2"


def _release(tmp: Path, version: str, broken: bool) -> Path:
    """A bundle built from a copy of this tree with `version` (and, if `broken`, an agent
    that exits at import), by the project's own bundle script."""
    tree = tmp / f"tree-{version}"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    project = tree / "pyproject.toml"
    project.write_text(
        project.read_text().replace(f'version = "{__version__}"', f'version = "{version}"')
    )
    if broken:
        with (tree / "edge_agent" / "__init__.py").open("a") as init:
            init.write(f'\nraise SystemExit("release {version} is broken on purpose")\n')
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    made = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_bundle.py"), "edge",
         "--platform", "manylinux2014_x86_64", "--python", python,
         "--out", str(tmp / "bundles"), "--source", str(tree)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    [bundle] = (tmp / "bundles").glob(f"edge-bundle-{version}-*.tar.gz")
    return bundle


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("releases")
    return _release(tmp, GOOD, broken=False), _release(tmp, BROKEN, broken=True)


class Center:
    """The operations center: registry, signing key, shelf, the HTTP server the boxes
    fetch releases from, and the collector's ingest (for `devices list`)."""

    def __init__(self, tmp: Path, broker: Mosquitto, processes: Processes) -> None:
        self.tmp = tmp
        self.keys = tmp / "keys"
        made = run_cli("collector", "devices", "config", "key", "--out", str(self.keys))
        assert made.returncode == 0, made.stdout + made.stderr
        self.config = tmp / "collector.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "broker": {"host": broker.host, "port": broker.port},
                    "store": {"kind": "sqlite", "path": str(tmp / "store.sqlite")},
                    "registry": {"path": str(tmp / "center" / "devices.sqlite")},
                    "ingest": {"client_id": "collector"},
                    "metrics": {"port": free_port()},
                }
            )
        )
        (tmp / "center").mkdir()
        registry = Registry(tmp / "center" / "devices.sqlite")
        for box in BOXES:
            registry.register(Registration(device=box, site=SITE, kind="air", name=box))
        registry.close()
        self.shelf = tmp / "center" / "releases"
        self.shelf.mkdir()
        port = free_port()
        processes.start(
            "releases-http", "python", "-m", "http.server", str(port),
            "--bind", "127.0.0.1", "--directory", str(self.shelf),
        )  # fmt: skip
        wait_for_port(port)
        self.url = f"http://127.0.0.1:{port}/"
        processes.start("collector", "collector", "run", "-c", str(self.config))

    def releases(self, *args: str, timeout_s: float = 60) -> tuple[int, str]:
        done = run_cli("collector", "releases", *args, "-c", str(self.config), timeout_s=timeout_s)
        return done.returncode, done.stdout + done.stderr

    def rollout(self, name: str, *targets: str) -> tuple[int, str]:
        return self.releases(
            "rollout", name, "--key", str(self.keys / "config-signing.key"), "--by", "ops-lan",
            "--url-base", self.url, "--wave-size", "1", "--health-s", "40", "--soak-s", "1",
            *targets, timeout_s=900,
        )  # fmt: skip


class Box:
    def __init__(self, tmp: Path, device: str, center: Center, broker: Mosquitto,
                 processes: Processes, sensor: int) -> None:  # fmt: skip
        self.home = tmp / device
        self.install = self.home / "opt"
        self.install.mkdir(parents=True)
        self.state = self.home / "state"
        self.config = self.home / "agent.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "device": {"id": device, "site": SITE, "kind": "air", "name": device},
                    "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5,
                               "reconnect_max_s": 1},
                    "state_dir": "state",
                    "collector_key": str(center.keys / "config-signing.pub"),
                    "releases_dir": "opt",
                    "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": sensor}],
                    "sources": [{"name": "aqms", "type": "modbus", "bus": "gw", "unit": 1,
                                 "profile": "pq-sim-air", "interval_s": 1}],
                }
            )
        )  # fmt: skip
        self.process = processes.start(device, "edge-agent", "run", "-c", str(self.config))
        self.boot = self.connected("")

    def connected(self, other_than: str, timeout_s: float = 60) -> str:
        def up() -> bool:
            status = read_status(self.state)
            return status is not None and status.broker_connected and status.boot_id != other_than

        wait_until(up, timeout_s, "the agent connected")
        status = read_status(self.state)
        assert status is not None
        assert status.pid == self.process.pid  # the same process, whatever it became
        return status.boot_id

    def program(self) -> str:
        """The `edge-agent` script the process runs (after its interpreter)."""
        words = Path(f"/proc/{self.process.pid}/cmdline").read_bytes().decode().split("\0")
        return next(w for w in words if w.endswith("/edge-agent"))


@pytest.mark.timeout(900)  # two releases built, three installed, each on a 2-core machine
def test_a_broken_release_is_rolled_back_and_a_good_one_kept_in_waves(
    releases, tmp_path, mosquitto, processes, simulated_device
):
    good, broken = releases
    center = Center(tmp_path, mosquitto, processes)
    sensor = simulated_device("1:pq-sim-air")
    boxes = [Box(tmp_path, d, center, mosquitto, processes, sensor) for d in BOXES]
    for bundle in (broken, good):
        code, out = center.releases("add", str(bundle), "--by", "ops-lan")
        assert code == 0, out
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(good) as tar, tarfile.open(damaged, "w:gz") as out_tar:
        for member in tar.getmembers():
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None and member.name.startswith("wheels/pyyaml"):
                content = data.read()[:-10]
                member.size = len(content)
                data = io.BytesIO(content)
            out_tar.addfile(member, data)
    code, out = center.releases("add", str(damaged), "--by", "ops-lan")
    assert code == 2
    assert "does not match its checksum" in out

    code, out = center.rollout(broken.name, "--all")
    assert code == 1, out
    text = " ".join(out.split())
    assert f"wave 1: {BOXES[0]}: rolled_back: release {BROKEN} exited with code 1" in text
    assert f"release {BROKEN} is broken on purpose" in text
    assert "wave 2" not in text
    assert f"0 of 2 box(es) run {BROKEN}" in text
    first = boxes[0]
    first.boot = first.connected(first.boot)
    assert first.program() == str(REPO / ".venv" / "bin" / "edge-agent")
    assert not (first.install / "releases" / BROKEN).exists()

    code, out = center.rollout(good.name, "--all")
    text = " ".join(out.split())
    assert code == 0, out
    for number, box in enumerate(boxes, 1):
        assert f"wave {number}: {box.home.name}: applied: runs {GOOD}, connected to" in text
        box.connected(box.boot)
        release = box.install / "releases" / GOOD
        assert box.program() == str(release / "bin" / "edge-agent")
        assert (box.install / "current").resolve() == release.resolve()
    assert f"2 of 2 box(es) run {GOOD}" in text

    def listed() -> bool:
        done = run_cli("collector", "devices", "list", "--csv", "-c", str(center.config))
        rows = [line.split(",") for line in done.stdout.splitlines()[1:]]
        return sorted((r[0], r[4]) for r in rows) == [(b, GOOD) for b in BOXES]

    wait_until(listed, 30, "the collector lists both boxes on the new version")
    figures = metrics(center.config)
    for box_id in BOXES:
        assert (
            figures[f'collector_device_info{{device="{box_id}",site="{SITE}",version="{GOOD}"}}']
            == 1
        )

    code, out = center.releases("log", "--csv")
    assert code == 0, out
    actions = [(line.split(",")[2], line.split(",")[3], line.split(",")[5])
               for line in out.splitlines()[1:]]  # fmt: skip
    assert actions == [
        (BOXES[0], BROKEN, "offered"),
        (BOXES[0], BROKEN, "rolled_back"),
        (BOXES[0], GOOD, "offered"),
        (BOXES[0], GOOD, "applied"),
        (BOXES[1], GOOD, "offered"),
        (BOXES[1], GOOD, "applied"),
    ]
    for box in boxes:
        box.process.kill()
        box.process.wait()
