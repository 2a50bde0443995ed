"""Config mistakes come back as one paragraph naming the file, the key path and the problem.

Most mistakes are data: a folder in config_errors/ per mistake, holding the broken file
under its real name and the problems it must give in expected.txt (config_errors/README.md
has the few kinds of line). The cases here need code: files that must exist beside the
config, a load that works once the mistake is mended, or the commands' own output.
"""

import re
from pathlib import Path

import pytest

from collector.compliance.limits import load_limits, load_site_limits
from collector.config import load_collector
from edge_agent.config import BoxKind, load_agent
from edge_agent.profiles import load_profile
from iotruntime.configfile import ConfigError
from testbed.processes import run_cli
from tests.helpers import REPO

CONFIGS = REPO / "configs"
CASES = Path(__file__).parent / "config_errors"

LOADERS = {
    "agent.yaml": load_agent,
    "collector.yaml": load_collector,
    "limits.yaml": load_limits,
    "site-limits.yaml": load_site_limits,
}
"""The loader a case's file goes through, by its name; any other name is a firmware profile."""

GOOD = """\
device: {id: air-t-01, site: test, kind: air, name: Test station}
broker: {host: 127.0.0.1, port: 1883}
state_dir: ./state
buses:
  - {name: gw, type: tcp, host: 127.0.0.1, port: 5020}
sources:
  - {name: aqms, type: modbus, bus: gw, profile: pq-sim-air}
"""


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_agent(path)
    assert str(path) in str(caught.value)
    return caught.value.problems


def check(error: ConfigError, line: str) -> None:
    """Assert what one line of a case's expected.txt says of the error."""
    what, _, value = line.partition(":")
    value = value.removeprefix(" ")
    found = error.problems
    keyed = re.fullmatch(r"problem at (\S+) says", what)
    if what == "message says":
        assert value in str(error)
    elif what == "first problem at":
        assert found[0][0] == value
    elif what == "first problem says":
        assert value in found[0][1]
    elif what == "only problem at":
        assert len(found) == 1
        assert found[0][0] == value
    elif what == "only problem says":
        assert len(found) == 1
        assert value in found[0][1]
    elif what == "only problem is":
        assert len(found) == 1
        assert found[0][1] == value
    elif what == "some problem is":
        key, _, message = value.partition(": ")
        assert (key, message) in found
    elif keyed:
        assert value in dict(found)[keyed[1]]
    else:
        pytest.fail(f"expected.txt: no such check: {line!r}")


@pytest.mark.parametrize(
    "case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_each_broken_file_gives_the_problems_its_case_expects(case):
    [path] = [p for p in case.iterdir() if p.name != "expected.txt"]
    lines = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    checks = [line for line in lines if line.strip() and not line.startswith("#")]
    assert checks, f"{case.name}/expected.txt checks nothing"
    with pytest.raises(ConfigError) as caught:
        LOADERS.get(path.name, load_profile)(path)
    if path.name == "agent.yaml":
        assert str(path) in str(caught.value)
    for line in checks:
        check(caught.value, line)


def test_every_example_config_loads():
    agents = [p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("collector")]
    kinds = {load_agent(p).config.device.kind for p in agents}
    assert kinds == set(BoxKind)
    assert load_collector(CONFIGS / "collector.yaml").store.kind == "sqlite"
    influx = load_collector(CONFIGS / "collector-influxdb.yaml")
    assert (influx.store.kind, influx.store.api, influx.retention.raw_days) == (
        "influxdb",
        "v2",
        90,
    )


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    loaded = load_agent(write(tmp_path, GOOD))
    assert loaded.config.state_dir == tmp_path.resolve() / "state"
    assert loaded.profiles["aqms"].model == "PQ-SIM-AQ1"


def test_missing_file(tmp_path):
    assert problems(tmp_path / "absent.yaml") == [("", "file not found")]


@pytest.mark.servers
def test_cli_prints_one_paragraph_and_no_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("port: 5020", "port: 99999"))
    result = run_cli("edge-agent", "read", "--config", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "Traceback" not in output
    assert str(path) in output.replace("\n", "")
    assert "buses[0].port" in output


def test_units_whose_profiles_disagree_on_serial_settings_need_them_on_the_bus(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name, baud in (("slow", 2400), ("fast", 19200)):
        (profiles / f"{name}.yaml").write_text(
            f"model: {name}\nmanufacturer: x\nsource: s\nserial: {{baudrate: {baud}}}\n"
            "points: [{parameter: p, unit: u, address: 0, type: uint16}]\n"
        )
    text = (
        "device: {id: a, site: s, kind: air, name: n}\nprofiles_dir: profiles\n"
        "buses: [{name: line, type: rtu, port: /dev/ttyUSB0}]\n"
        "sources:\n  - {name: one, type: modbus, bus: line, unit: 1, profile: slow}\n"
        "  - {name: two, type: modbus, bus: line, unit: 2, profile: fast}\n"
    )
    found = problems(write(tmp_path, text))
    assert found == [
        (
            "buses[0]",
            "the units' profiles disagree on baudrate (2400, 19200); set baudrate on the bus",
        )
    ]
    settled = load_agent(
        write(tmp_path, text.replace("port: /dev/ttyUSB0", "port: /dev/ttyUSB0, baudrate: 9600"))
    )
    assert settled.buses["line"].baudrate == 9600
    assert settled.buses["line"].parity == "N"


@pytest.mark.servers
def test_collector_cli_reports_config_errors_the_same_way(tmp_path):
    path = write(tmp_path, "store: {kind: sqlite, path: x.db, flavour: y}\n", "collector.yaml")
    result = run_cli("collector", "devices", "--config", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "store.flavour" in result.stdout


@pytest.mark.servers
def test_cli_keeps_patterns_in_messages_intact(tmp_path):
    path = write(tmp_path, GOOD.replace("id: air-t-01", "id: Air_T"))
    result = run_cli("edge-agent", "read", "--config", str(path))
    assert result.returncode == 2
    assert "^[a-z0-9][a-z0-9-]{0,62}$" in result.stdout.replace("\n", "")


def test_a_profile_without_serial_settings_needs_them_on_the_bus(tmp_path):
    text = (
        "device: {id: a, site: s, kind: domestic_water, name: n}\n"
        "buses: [{name: line, type: rtu, port: /dev/ttyUSB0}]\n"
        "sources: [{name: ph, type: modbus, bus: line, unit: 3, profile: yosemitech-y532}]\n"
    )
    found = problems(write(tmp_path, text))
    assert found == [
        (
            "buses[0]",
            "no profile on this bus states its serial settings; "
            "set baudrate, parity, stopbits, bytesize on the bus",
        )
    ]
    given = text.replace(
        "port: /dev/ttyUSB0",
        "port: /dev/ttyUSB0, baudrate: 9600, parity: N, stopbits: 1, bytesize: 8",
    )
    assert load_agent(write(tmp_path, given)).buses["line"].baudrate == 9600
