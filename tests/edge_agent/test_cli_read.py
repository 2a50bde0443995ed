"""`edge-agent read`: a technician's one-shot check, ad hoc or from a config."""

import yaml

from testbed.processes import run_cli
from tests.helpers import FIXTURES


def test_read_one_device_ad_hoc(simulated_device):
    port = simulated_device("3:pq-sim-water")
    result = run_cli(
        "edge-agent",
        "read",
        "--profile",
        "pq-sim-water",
        "--unit",
        "3",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "free_chlorine" in result.stdout
    assert "mg/L" in result.stdout


def test_read_every_source_of_a_config_and_fail_on_the_broken_one(simulated_device, tmp_path):
    port = simulated_device("1:pq-sim-noise")
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "wifi-t-01", "site": "test", "kind": "wifi_ap", "name": "t"},
                "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": port}],
                "sources": [
                    {"name": "slm", "type": "modbus", "bus": "gw", "profile": "pq-sim-noise"},
                    {
                        "name": "ap",
                        "type": "wifi_ap",
                        "method": "hostapd",
                        "command": ["cat", str(FIXTURES / "hostapd-all-sta.txt")],
                    },
                    {
                        "name": "ghost",
                        "type": "modbus",
                        "bus": "gw",
                        "unit": 7,
                        "profile": "pq-sim-air",
                    },
                ],
            }
        )
    )
    result = run_cli("edge-agent", "read", "--config", str(config))
    assert result.returncode == 1
    assert "laeq" in result.stdout
    assert "clients" in result.stdout
    assert "ghost: bus gw unit 7" in result.stdout
    only = run_cli("edge-agent", "read", "--config", str(config), "--source", "ap")
    assert only.returncode == 0
    assert "laeq" not in only.stdout
