"""Fixtures that start real components on free loopback ports and stop them afterwards,
and the `servers` mark on every test that uses one of them.

A test that starts a server or a process without these fixtures (a pymodbus simulator, a
local HTTP stand-in, `run_cli`) carries the mark itself: `pytest -m "not servers"` runs
only the fast in-process tests.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.processes import Processes
from testbed.servers import (
    INFLUXD,
    MOSQUITTO,
    VICTORIA_METRICS,
    Influxd,
    Mosquitto,
    SerialPair,
    VictoriaMetrics,
)
from testbed.waiting import free_port, wait_for_port

SERVER_FIXTURES = frozenset(
    {
        "mosquitto",
        "influxd",
        "own_influxd",
        "victoria_metrics",
        "processes",
        "simulated_device",
        "serial_pair",
    }
)
"""The fixtures below that start something; a test using any of them, directly or through
another fixture, is marked `servers`. A fixture that asks for one only for some of its
parameters (`request.getfixturevalue`) marks those: `pytest.param(..., marks=servers)`."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if not MOSQUITTO.exists():
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


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


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    if not VICTORIA_METRICS.exists():
        pytest.fail("victoria-metrics is not installed: run `make test`, which installs it")
    server = VictoriaMetrics(tmp_path)
    server.start()
    yield server
    server.stop()


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


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[SerialPair]:
    pair = SerialPair(tmp_path)
    pair.start()
    yield pair
    pair.stop()
