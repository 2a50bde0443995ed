"""Config mistakes come back as one paragraph naming the file, the key path and the problem."""

from pathlib import Path

import pytest

from collector.config import load_collector
from edge_agent.config import BoxKind, load_agent
from iotwire.configfile import ConfigError
from tests.helpers import run_cli

CONFIGS = Path(__file__).parent.parent / "configs"

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


def test_wrong_type_names_the_key(tmp_path):
    found = problems(write(tmp_path, GOOD.replace("port: 5020", "port: fast")))
    assert found[0][0] == "buses[0].port"
    assert "'fast'" in found[0][1]


def test_unknown_key_names_the_key(tmp_path):
    found = problems(write(tmp_path, GOOD.replace("port: 1883}", "port: 1883, hots: x}")))
    assert found == [("broker.hots", "unknown key (check its spelling and indentation)")]


def test_missing_key(tmp_path):
    found = problems(write(tmp_path, GOOD.replace("name: Test station", "nam: x")))
    assert ("device.name", "required key is missing") in found


def test_unknown_source_type(tmp_path):
    found = problems(write(tmp_path, GOOD.replace("type: modbus,", "type: carrier_pigeon,")))
    assert found[0][0] == "sources[0]"
    assert "carrier_pigeon" in found[0][1]


def test_missing_profile_lists_the_known_ones(tmp_path):
    found = problems(write(tmp_path, GOOD.replace("pq-sim-air", "no-such-analyser")))
    assert found[0][0] == "sources[0].profile"
    assert "no-such-analyser" in found[0][1]
    assert "pq-sim-air" in found[0][1]


def test_missing_file(tmp_path):
    assert problems(tmp_path / "absent.yaml") == [("", "file not found")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device: [unclosed", "invalid YAML at line 1"),
        ("", "found an empty file"),
        ("- a\n- b\n", "found a list"),
        ("device: {id: a}\ndevice: {id: b}\n", "duplicate key 'device'"),
    ],
)
def test_broken_yaml(tmp_path, text, expected):
    [(key, what)] = problems(write(tmp_path, text))
    assert key == ""
    assert expected in what


def test_duplicate_source_names(tmp_path):
    doubled = GOOD + "  - {name: aqms, type: modbus, bus: gw, profile: pq-sim-water}\n"
    found = problems(write(tmp_path, doubled))
    assert "repeated: aqms" in found[0][1]


def test_cli_prints_one_paragraph_and_no_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("port: 5020", "port: 99999"))
    result = run_cli("edge-agent", "read", "--config", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "Traceback" not in output
    assert str(path) in output.replace("\n", "")
    assert "buses[0].port" in output


def test_a_source_on_an_unknown_bus(tmp_path):
    found = problems(write(tmp_path, GOOD.replace("bus: gw", "bus: rs485-9")))
    assert "bus 'rs485-9', which is not among the buses: gw" in found[0][1]


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


def test_collector_cli_reports_config_errors_the_same_way(tmp_path):
    path = write(tmp_path, "store: {kind: sqlite, path: x.db, flavour: y}\n", "collector.yaml")
    result = run_cli("collector", "devices", "--config", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "store.flavour" in result.stdout


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


def test_collector_store_and_retention_mistakes_name_their_keys(tmp_path):
    path = write(
        tmp_path,
        "store:\n  kind: influxdb\n  api: v1\n  token_file: t\n  batch_points: 0\n"
        "retention:\n  raw_days: 30\n  hourly_days: 7\n",
        "collector.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        load_collector(path)
    found = dict(caught.value.problems)
    assert "greater than or equal to 1" in found["store.batch_points"]
    assert "hourly_days must not be shorter than raw_days" in found["retention"]


def test_an_influxdb_v2_store_without_an_org_is_refused_at_load(tmp_path):
    path = write(tmp_path, "store:\n  kind: influxdb\n  api: v2\n", "collector.yaml")
    with pytest.raises(ConfigError) as caught:
        load_collector(path)
    assert "api v2 needs `org`" in dict(caught.value.problems)["store"]
