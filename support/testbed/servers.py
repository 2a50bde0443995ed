"""Real servers on free loopback ports, which tests and benchmarks may stop, kill and
start again: Mosquitto, InfluxDB 1.x, VictoriaMetrics, and socat serial pairs."""

import pwd
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testbed.waiting import free_port, wait_for_http, wait_for_port, wait_until

MOSQUITTO = Path("/usr/sbin/mosquitto")


class Mosquitto:
    """A real Mosquitto broker process, which tests may stop, kill and start again.

    By default a plain, anonymous broker on a free port, written here. With `config`, the
    broker runs a configuration written elsewhere (`collector broker-config`) on its
    `ports`, as `user` when given: the Debian package's unprivileged `mosquitto`, as on a
    broker host, so a file it could not read there cannot be read here either. Starting it
    as another user takes root."""

    def __init__(
        self,
        workdir: Path,
        extra_config: str = "",
        *,
        config: Path | None = None,
        ports: Sequence[int] = (),
        user: str | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self._log = workdir / "mosquitto.log"
        self._user = user
        self.process: subprocess.Popen[bytes] | None = None
        if config is not None:
            self._config, self._ports = config, tuple(ports)
            self.port = self._ports[0]
            return
        self.port = free_port()
        self._ports = (self.port,)
        self._config = workdir / "mosquitto.conf"
        # Persistence on, as in production: a broker stopped and started again keeps the
        # collectors' sessions and the messages queued for them. `user root` keeps a
        # broker started as root from dropping to a user that cannot write the test's
        # directory; started as anyone else, the broker ignores it.
        self._config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir}/\nuser root\n"
            "max_queued_messages 100000\n" + extra_config
        )

    def start(self) -> None:
        log = self._log.open("ab")
        as_user: dict[str, Any] = {}
        if self._user is not None:
            # Its own group only: root's supplementary groups would open files to it that
            # a broker host's `mosquitto` user cannot read.
            as_user = {
                "user": self._user,
                "group": pwd.getpwnam(self._user).pw_gid,
                "extra_groups": [],
            }
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self._config)], stdout=log, stderr=log, **as_user
        )
        for port in self._ports:
            wait_for_port(port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: whatever it held in memory and had not saved is gone."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


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
