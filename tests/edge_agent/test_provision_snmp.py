"""Provisioning a box beside managed access points from flags: each AP read over SNMP v2c
or v3 from a real net-snmp snmpd, the secrets copied from the technician's files beside
the config (never taken on the command line), a re-run keeping what was tuned by hand,
the install folder for software updates, and the flags that do not go together named."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edge_agent.check import check_sources
from edge_agent.cli.app import app
from edge_agent.config import load_agent
from iotruntime.certificates import create_ca
from testbed.snmpd import SNMPD, Snmpd
from tests.edge_agent.sources.test_snmp_ap import VALUES

pytestmark = pytest.mark.servers

DEVICE = "wifi-dd-08"


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    if not SNMPD.exists():
        pytest.fail("snmpd is not installed: run `make test`, which installs it")
    (tmp_path / "ap").mkdir()
    server = Snmpd(tmp_path / "ap", VALUES)
    server.start()
    yield server
    server.stop()


def provision(tmp_path: Path, *extra: str, input: str | None = None):
    site_ca = tmp_path / "ca.crt"
    if not site_ca.exists():
        site_ca.write_bytes(create_ca("site").cert_pem)
    return CliRunner().invoke(
        app,
        [
            "provision", "--device", DEVICE, "--site", "duong-dong", "--kind", "wifi_ap",
            "--name", "Night market AP", "--broker-host", "broker.example",
            "--ca", str(site_ca), "--out", str(tmp_path / DEVICE), "--yes", *extra,
        ],
        input=input,
    )  # fmt: skip


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(f"{text}\n")
    return str(path)


def written(tmp_path: Path) -> dict:
    return yaml.safe_load((tmp_path / DEVICE / "agent.yaml").read_text())


def read_sources(tmp_path: Path) -> dict[str, tuple[bool, str]]:
    """What `edge-agent check` says of each source of the provisioned config."""
    loaded = load_agent(tmp_path / DEVICE / "agent.yaml")
    return {line.what: (line.ok, line.detail) for line in asyncio.run(check_sources(loaded))}


def test_a_v2c_ap_from_flags_reads_the_real_snmpd_and_a_rerun_keeps_the_hand_tuning(
    tmp_path, snmpd
):
    community = secret(tmp_path, "community", snmpd.community)
    done = provision(
        tmp_path, "--snmp-host", f"{snmpd.host}:{snmpd.port}", "--snmp-vendor", "unifi",
        "--snmp-community-file", community,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    [source] = written(tmp_path)["sources"]  # the template's iw source gives way
    assert source == {
        "name": "ap", "type": "snmp_ap", "host": snmpd.host, "port": snmpd.port,
        "vendor": "unifi", "version": "2c", "community_file": "snmp-community",
        "interval_s": 60,
    }  # fmt: skip
    copy = tmp_path / DEVICE / "snmp-community"
    assert copy.read_text() == f"{snmpd.community}\n"
    assert copy.stat().st_mode & 0o777 == 0o600
    assert snmpd.community not in done.output
    lines = read_sources(tmp_path)
    assert lines["sensor ap"][0], lines
    assert "clients 9 count" in lines["sensor ap"][1]
    # The technician names the uplink by hand; a re-run for another broker keeps it, and
    # the same flags again keep the AP as it is.
    tuned = written(tmp_path)
    tuned["sources"][0]["interfaces"] = ["lo"]
    (tmp_path / DEVICE / "agent.yaml").write_text(yaml.safe_dump(tuned))
    again = provision(
        tmp_path, "--broker-port", "9883", "--snmp-host", f"{snmpd.host}:{snmpd.port}",
        "--snmp-vendor", "unifi", "--snmp-community-file", community,
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert written(tmp_path)["sources"][0]["interfaces"] == ["lo"]
    assert written(tmp_path)["broker"]["port"] == 9883
    assert read_sources(tmp_path)["sensor ap"][0]


def test_v3_aps_of_a_cisco_controller_read_per_radio_band(tmp_path, snmpd):
    auth = secret(tmp_path, "auth", snmpd.auth_key)
    priv = secret(tmp_path, "priv", snmpd.priv_key)
    done = provision(
        tmp_path, "--snmp-host", f"wlc={snmpd.host}", "--snmp-port", str(snmpd.port),
        "--snmp-vendor", "cisco-wlc", "--snmp-user", snmpd.user,
        "--snmp-auth-protocol", "sha", "--snmp-auth-file", auth,
        "--snmp-priv-protocol", "aes", "--snmp-priv-file", priv,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    [source] = written(tmp_path)["sources"]
    assert {k: source[k] for k in ("name", "version", "user", "auth_key_file")} == {
        "name": "wlc", "version": 3, "user": snmpd.user, "auth_key_file": "snmp-auth-key",
    }  # fmt: skip
    assert (tmp_path / DEVICE / "snmp-priv-key").read_text() == f"{snmpd.priv_key}\n"
    loaded = load_agent(tmp_path / DEVICE / "agent.yaml")
    assert loaded.config.sources[0].priv_key_file == tmp_path / DEVICE / "snmp-priv-key"
    ok, detail = read_sources(tmp_path)["sensor wlc"]
    assert ok, detail
    assert "clients 42 count" in detail


def test_several_aps_are_named_in_order_and_the_answers_fill_what_flags_leave(tmp_path):
    community = secret(tmp_path, "community", "pq-ro")
    done = provision(
        tmp_path, "--snmp-host", "10.20.7.2", "--snmp-host", "[fd00::7]:1161",
        "--snmp-host", "10.20.7.4:1161", input=f"mikrotik\n{community}\n",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    sources = written(tmp_path)["sources"]
    assert [(s["name"], s["host"], s["port"], s["vendor"]) for s in sources] == [
        ("ap-1", "10.20.7.2", 161, "mikrotik"),
        ("ap-2", "fd00::7", 1161, "mikrotik"),
        ("ap-3", "10.20.7.4", 1161, "mikrotik"),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--snmp-vendor", "unifi", "--snmp-community", "public"),
         "the SNMP community never goes on the command line"),
        (("--snmp-vendor", "unifi", "--snmp-community-file", "public"),
         "--snmp-community-file public: no such file; the secret goes in a file"),
        (("--snmp-vendor", "unifi", "--snmp-auth-file", "{auth}", "--snmp-priv-file", "{auth}"),
         "SNMP v3 needs --snmp-user, --snmp-auth-file and --snmp-priv-file; missing: --snmp-user"),
        (("--snmp-community-file", "{community}", "--snmp-user", "pqmon"),
         "SNMP v2c (--snmp-community-file) or v3 (--snmp-user, --snmp-auth-file,"
         " --snmp-priv-file), not both"),
        (("--snmp-vendor", "unifi", "--snmp-user", "pqmon", "--snmp-auth-file", "{auth}",
          "--snmp-priv-file", "{short}"), "holds fewer than 8 characters"),
        (("--snmp-vendor", "aruba", "--snmp-community-file", "{community}"),
         "--snmp-vendor 'aruba': one of unifi, mikrotik, cisco-wlc, none"),
        (("--snmp-vendor", "unifi", "--snmp-community-file", "{community}",
          "--snmp-auth-protocol", "sha"), "only for SNMP v3"),
        (("--snmp-vendor", "unifi", "--snmp-community-file", "{empty}"), "is empty"),
        (("--wifi-interface", "wlan1"), "--wifi-interface is for an access point the box runs"),
        ((), "missing --snmp-vendor, --snmp-community-file/--snmp-user"),
        (("--snmp-host", "10.20.7.3:99999"), "port '99999': a number from 1 to 65535"),
        (("--snmp-host", "10.20.7.2"), "--snmp-host: 10.20.7.2:161 given twice"),
    ],
)  # fmt: skip
def test_what_does_not_go_together_is_named_and_nothing_written(tmp_path, extra, message):
    files = {
        "auth": secret(tmp_path, "auth", "auth-key-123"),
        "short": secret(tmp_path, "short", "short"),
        "community": secret(tmp_path, "community", "pq-ro"),
        "empty": secret(tmp_path, "empty", ""),
    }
    result = provision(
        tmp_path, "--snmp-host", "10.20.7.2", *(e.format(**files) for e in extra), input=""
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / DEVICE).exists()


def test_snmp_flags_need_a_host_and_an_access_point_box(tmp_path):
    alone = provision(tmp_path, "--snmp-vendor", "unifi")
    assert alone.exit_code == 2
    assert "--snmp-vendor: only with --snmp-host" in alone.output
    site_ca = tmp_path / "ca.crt"
    other = CliRunner().invoke(
        app,
        [
            "provision", "--device", "air-dd-01", "--site", "dd", "--kind", "air",
            "--name", "x", "--broker-host", "b", "--ca", str(site_ca),
            "--out", str(tmp_path / "air"), "--snmp-host", "10.0.0.1",
        ],
    )  # fmt: skip
    assert other.exit_code == 2
    assert "--snmp-host is for a wifi_ap, not a air" in other.output
