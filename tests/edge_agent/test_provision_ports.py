"""A box provisioned without `--broker-port` gets the port `collector broker-config` gives
its kind of credential: a password's or a certificate's."""

import yaml
from typer.testing import CliRunner

from edge_agent.cli.app import app
from iotruntime.broker_access import CERTIFICATE_PORT, PASSWORD_PORT
from iotruntime.certificates import create_ca


def provision(tmp_path, device: str, *extra: str) -> int:
    site_ca = tmp_path / "ca.crt"
    site_ca.write_bytes(create_ca("site").cert_pem)
    out = tmp_path / device
    result = CliRunner().invoke(
        app,
        [
            "provision", "--device", device, "--site", "dd", "--kind", "air",
            "--name", f"{device} station", "--broker-host", "broker.example",
            "--ca", str(site_ca), "--out", str(out), *extra,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return int(yaml.safe_load((out / "agent.yaml").read_text())["broker"]["port"])


def test_a_password_box_defaults_to_the_password_port_a_certificate_box_to_its_own(tmp_path):
    device_ca = create_ca("devices")
    (tmp_path / "device-ca.crt").write_bytes(device_ca.cert_pem)
    (tmp_path / "device-ca.key").write_bytes(device_ca.key_pem)
    certificate = ("--device-ca", str(tmp_path / "device-ca.crt"))
    certificate += ("--device-ca-key", str(tmp_path / "device-ca.key"))
    assert provision(tmp_path, "air-dd-01") == PASSWORD_PORT
    assert provision(tmp_path, "air-dd-02", *certificate) == CERTIFICATE_PORT
    assert provision(tmp_path, "air-dd-03", *certificate, "--broker-port", "9999") == 9999
