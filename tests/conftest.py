"""Fixtures that start real components on free loopback ports and stop them afterwards."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, free_port, wait_for_http, wait_for_port, wait_until

MOSQUITTO = Path("/usr/sbin/mosquitto")


class Mosquitto:
    """A real Mosquitto broker process, which tests may stop, kill and start again."""

    def __init__(self, workdir: Path, extra_config: str = "") -> None:
        self.port = free_port()
        self.host = "127.0.0.1"
        self._config = workdir / "mosquitto.conf"
        self._log = workdir / "mosquitto.log"
        # Persistence on, as in production: a broker stopped and started again keeps the
        # collectors' sessions and the messages queued for them. `user root` keeps a
        # broker started as root from dropping to a user that cannot write the test's
        # directory; started as anyone else, the broker ignores it.
        self._config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir}/\nuser root\n"
            "max_queued_messages 100000\n" + extra_config
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self._log.open("ab")
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self._config)], stdout=log, stderr=log
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if not MOSQUITTO.exists():
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


INFLUXD = Path("/usr/bin/influxd")
VICTORIA_METRICS = Path("/usr/bin/victoria-metrics")


class Influxd:
    """A real InfluxDB 1.x server on a temporary data directory; tests may stop it,
    kill it and start it again on the same data and port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self._config = workdir / "influxdb.conf"
        self._log = workdir / "influxd.log"
        self._config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self._log.open("ab")
        self.process = subprocess.Popen(
            [str(INFLUXD), "-config", str(self._config)], stdout=log, stderr=log
        )
        wait_for_http(f"{self.url}/ping")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One server for the session; each test gets its own database on it."""
    if not INFLUXD.exists():
        pytest.fail("influxd is not installed: run `make test`, which installs it")
    server = Influxd(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """A server of the test's own, for tests that stop or kill it."""
    server = Influxd(tmp_path / "influxd")
    server.start()
    yield server
    server.stop()


class VictoriaMetrics:
    """VictoriaMetrics takes InfluxDB line protocol on /api/v2/write: a real server for
    the v2 write path, read back through its export API."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._data = workdir / "vm-data"
        self._log = workdir / "victoria-metrics.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self._log.open("ab")
        self.process = subprocess.Popen(
            [
                str(VICTORIA_METRICS),
                f"-storageDataPath={self._data}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
            ],
            stdout=log,
            stderr=log,
        )
        wait_for_http(f"{self.url}/health")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    if not VICTORIA_METRICS.exists():
        pytest.fail("victoria-metrics is not installed: run `make test`, which installs it")
    server = VictoriaMetrics(tmp_path)
    server.start()
    yield server
    server.stop()


class Processes:
    """Starts project commands as real processes, logs each to a file, ends them all."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self._workdir / f"{name}.log").open("ab")
        process = subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=log, stderr=log)
        self._running.append(process)
        return process

    def log(self, name: str) -> str:
        return (self._workdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in reversed(self._running):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def simulated_device(processes: Processes):
    """Start `edge-agent simulate UNIT:PROFILE...` on a free TCP port; returns the port."""

    def start(*units: str) -> int:
        port = free_port()
        processes.start(f"sim-{port}", "edge-agent", "simulate", *units, "--port", str(port))
        wait_for_port(port)
        return port

    return start


class SerialPair:
    """Two connected pseudo-terminals made by socat: the real pyserial path, no hardware.
    Stopping it is a USB adapter pulled out; starting it again is plugging it back in."""

    def __init__(self, workdir: Path) -> None:
        self.agent_side = str(workdir / "ttyAGENT")
        self.device_side = str(workdir / "ttyDEVICE")
        self._log = workdir / "socat.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self._log.open("ab")
        self.process = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.agent_side}",
                f"pty,raw,echo=0,link={self.device_side}",
            ],
            stdout=log,
            stderr=log,
        )
        wait_until(
            lambda: Path(self.agent_side).exists() and Path(self.device_side).exists(),
            10,
            "socat pseudo-terminals",
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        wait_until(lambda: not Path(self.agent_side).exists(), 10, "pseudo-terminals gone")


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[SerialPair]:
    pair = SerialPair(tmp_path)
    pair.start()
    yield pair
    pair.stop()
