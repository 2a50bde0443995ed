"""Provisioning a box with its real sensors from flags: profiles by name and unit id on
an RS-485 adapter or a Modbus TCP host; a re-run keeps the technician's edits, `--reset`
starts from the template; without a terminal, what is missing is named at once."""

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from edge_agent.cli.app import app
from edge_agent.config import load_agent
from iotruntime.certificates import create_ca
from testbed.processes import run_cli


def provision(tmp_path, *extra: str, device: str = "ww-at-01"):
    site_ca = tmp_path / "ca.crt"
    if not site_ca.exists():
        site_ca.write_bytes(create_ca("site").cert_pem)
    return CliRunner().invoke(
        app,
        [
            "provision", "--device", device, "--site", "an-thoi", "--kind", "wastewater",
            "--name", "An Thoi plant outlet", "--broker-host", "broker.example",
            "--ca", str(site_ca), "--out", str(tmp_path / device), "--yes", *extra,
        ],
    )  # fmt: skip


def config(tmp_path, device: str = "ww-at-01") -> dict:
    return yaml.safe_load((tmp_path / device / "agent.yaml").read_text())


def test_sensors_from_flags_on_a_serial_line_survive_a_rerun_and_go_with_reset(tmp_path):
    sensors = ("--sensor", "yosemitech-y532:1:ph", "--sensor", "yosemitech-y520:2")
    line = ("--serial", "/dev/ttyUSB0", "--baudrate", "9600", "--parity", "N")
    wired = provision(tmp_path, *sensors, *line)
    assert wired.exit_code == 0, wired.output
    written = config(tmp_path)
    [bus] = written["buses"]
    assert bus == {
        "name": "rs485-1",
        "type": "rtu",
        "port": "/dev/ttyUSB0",
        "baudrate": 9600,
        "parity": "N",
        "stopbits": 1,
        "bytesize": 8,
    }
    assert [(s["name"], s["profile"], s["unit"]) for s in written["sources"]] == [
        ("ph", "yosemitech-y532", 1),
        ("yosemitech-y520-2", "yosemitech-y520", 2),
    ]
    # The technician tunes an interval by hand; a re-run for a new broker keeps it.
    written["sources"][0]["interval_s"] = 30
    (tmp_path / "ww-at-01" / "agent.yaml").write_text(yaml.safe_dump(written))
    rerun = provision(tmp_path, "--broker-port", "9883")
    assert rerun.exit_code == 0, rerun.output
    again = config(tmp_path)
    assert (again["sources"][0]["interval_s"], again["broker"]["port"]) == (30, 9883)
    reset = provision(tmp_path, "--reset")
    assert reset.exit_code == 0, reset.output
    assert [s["profile"] for s in config(tmp_path)["sources"]] == ["pq-sim-wastewater"]


def test_sensors_on_a_modbus_tcp_gateway(tmp_path):
    result = provision(
        tmp_path, "--sensor", "xylem-magflux:5", "--modbus-host", "10.20.0.8",
        "--modbus-port", "5020",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = config(tmp_path)
    assert written["buses"] == [
        {"name": "modbus-tcp", "type": "tcp", "host": "10.20.0.8", "port": 5020}
    ]
    assert written["sources"][0]["bus"] == "modbus-tcp"


def test_what_cannot_be_provisioned_is_named(tmp_path):
    for extra, message in (
        (("--sensor", "no-such-probe:1", "--serial", "/dev/ttyUSB0"), "no firmware profile"),
        (("--sensor", "yosemitech-y532", "--serial", "/dev/ttyUSB0"), "write it PROFILE:UNIT"),
        (("--sensor", "yosemitech-y532:300", "--serial", "/dev/ttyUSB0"), "from 1 to 247"),
        (("--sensor", "yosemitech-y532:1"), "give one"),
        (("--sensor", "vaisala-wxt536-ascii:1", "--serial", "/dev/ttyS0"), "not Modbus"),
    ):
        result = provision(tmp_path, *extra)
        assert result.exit_code == 2, result.output
        assert message in result.output, result.output
    assert not (tmp_path / "ww-at-01").exists()


def test_when_the_answers_run_out_every_missing_value_is_named_at_once(tmp_path):
    result = CliRunner().invoke(
        app, ["provision", "--site", "dd", "--out", str(tmp_path)], input="air-dd-09\n"
    )
    assert result.exit_code == 2
    assert "missing --kind, --name, --broker-host, --ca" in result.output
    nothing = CliRunner().invoke(app, ["provision", "--out", str(tmp_path)], input="")
    assert nothing.exit_code == 2
    assert "missing --device, --site, --kind, --name, --broker-host, --ca" in nothing.output


def test_the_profiles_are_listed_for_the_technician():
    result = CliRunner().invoke(app, ["profiles"])
    assert result.exit_code == 0
    assert "yosemitech-y532" in result.output  # the profile column never folds
    assert "pq-sim-wastewater" in result.output
    listed = json.loads(CliRunner().invoke(app, ["profiles", "--json"]).output)
    [found] = [p for p in listed if p["profile"] == "pq-sim-wastewater"]
    assert "nh4" in found["parameters"]


def test_the_center_s_config_key_goes_on_the_box_and_in_its_config(tmp_path):
    made = run_cli("collector", "devices", "config", "key", "--out", str(tmp_path / "center"))
    assert made.returncode == 0, made.stdout + made.stderr
    public = tmp_path / "center" / "config-signing.pub"
    done = provision(tmp_path, "--collector-key", str(public))
    assert done.exit_code == 0, done.output
    assert config(tmp_path)["collector_key"] == "collector-key.pub"
    assert (tmp_path / "ww-at-01" / "collector-key.pub").read_bytes() == public.read_bytes()
    assert load_agent(tmp_path / "ww-at-01" / "agent.yaml").config.collector_key is not None


def test_a_box_taking_the_center_s_configs_installs_updates_where_the_installer_put_it(
    tmp_path,
):
    public = tmp_path / "center.pub"
    public.write_bytes(create_ca("center").cert_pem)  # any file: only copied here
    done = provision(tmp_path, "--collector-key", str(public))
    assert done.exit_code == 0, done.output
    assert config(tmp_path)["releases_dir"] == "/opt/edge-agent"  # scripts/install-edge.sh
    moved = provision(tmp_path, "--releases-dir", "/srv/edge-agent")
    assert moved.exit_code == 0, moved.output
    # A re-run with the key again keeps the folder the box was given.
    again = provision(tmp_path, "--collector-key", str(public))
    assert again.exit_code == 0, again.output
    loaded = load_agent(tmp_path / "ww-at-01" / "agent.yaml").config
    assert loaded.releases_dir == Path("/srv/edge-agent")
    none = provision(tmp_path, "--collector-key", str(public), "--releases-dir", "none")
    assert none.exit_code == 0, none.output
    assert "releases_dir" not in config(tmp_path)
    # Without the key, a box is given no install folder unless asked.
    bare = provision(tmp_path, device="ww-at-02")
    assert bare.exit_code == 0, bare.output
    assert "releases_dir" not in config(tmp_path, "ww-at-02")
