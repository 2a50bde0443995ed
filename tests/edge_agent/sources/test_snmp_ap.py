"""Managed access points read over SNMP, against a real net-snmp snmpd: v2c and v3
authPriv, the vendors' client tables served through snmpd, IF-MIB and sysUpTime from
snmpd itself, and what a box sees when the AP refuses it, is down, or comes back."""

import asyncio
import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.config import SnmpApSource, load_agent
from edge_agent.sources.base import SourceError
from edge_agent.sources.snmp_ap import SnmpApReader, name_part
from iotruntime.configfile import ConfigError
from iotwire.messages import Quality, Reading
from testbed.collector_setup import collector_config
from testbed.snmpd import SNMPD, Snmpd, Value, cisco_ap_radio
from testbed.waiting import wait_until

pytestmark = pytest.mark.servers

UNIFI = "1.3.6.1.4.1.41112.1.6.1.2.1"
MIKROTIK = "1.3.6.1.4.1.14988.1.1.1.3.1"
CISCO = "1.3.6.1.4.1.14179.2.1.1.1"
VALUES: dict[str, Value] = {
    # UniFi: two VAPs broadcasting the public SSID (2.4 and 5 GHz) and a staff SSID on 5 GHz.
    f"{UNIFI}.6.1": ("string", "Phú Quốc Free WiFi"),
    f"{UNIFI}.6.2": ("string", "Phú Quốc Free WiFi"),
    f"{UNIFI}.6.3": ("string", "Staff"),
    f"{UNIFI}.8.1": ("gauge", 5),
    f"{UNIFI}.8.2": ("gauge", 3),
    f"{UNIFI}.8.3": ("gauge", 1),
    f"{UNIFI}.9.1": ("string", "ng"),
    f"{UNIFI}.9.2": ("string", "na"),
    f"{UNIFI}.9.3": ("string", "na"),
    # MikroTik: one radio, indexed by its ifIndex; snmpd's ifIndex 1 is the loopback.
    f"{MIKROTIK}.4.1": ("string", "PQ-Public"),
    f"{MIKROTIK}.6.1": ("counter", 12),
    # A Cisco controller: two WLANs.
    f"{CISCO}.2.1": ("string", "PQ-Public"),
    f"{CISCO}.2.2": ("string", "PQ-Staff"),
    f"{CISCO}.38.1": ("counter", 40),
    f"{CISCO}.38.2": ("counter", 2),
    # Its APs' radios: two dual-band APs, one with a 6 GHz radio, one radio not typed yet
    # and one of a type this MIB does not name; 42 clients in all, as on the WLANs.
    **cisco_ap_radio("00:3a:7d:10:20:30", 0, 1, 7),
    **cisco_ap_radio("00:3a:7d:10:20:30", 1, 2, 20),
    **cisco_ap_radio("f4:cf:e2:aa:bb:cc", 0, 1, 5),
    **cisco_ap_radio("f4:cf:e2:aa:bb:cc", 1, 2, 6),
    **cisco_ap_radio("f4:cf:e2:aa:bb:cc", 2, 6, 2),
    **cisco_ap_radio("f4:cf:e2:aa:bb:cd", 3, None, 1),
    **cisco_ap_radio("f4:cf:e2:aa:bb:ce", 0, 9, 1),
}


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    if not SNMPD.exists():
        pytest.fail("snmpd is not installed: run `make test`, which installs it")
    server = Snmpd(tmp_path, VALUES)
    server.start()
    yield server
    server.stop()


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


def v2c(tmp_path: Path, server: Snmpd, **more: Any) -> dict[str, Any]:
    community = secret(tmp_path, "community", server.community)
    return {"type": "snmp_ap", "name": "ap", "host": server.host, "port": server.port,
            "community_file": community, "timeout_s": 2, "retries": 0} | more  # fmt: skip


def v3(tmp_path: Path, server: Snmpd, **more: Any) -> dict[str, Any]:
    return {
        "type": "snmp_ap", "name": "ap", "host": server.host, "port": server.port,
        "version": 3, "user": server.user,
        "auth_key_file": secret(tmp_path, "auth-key", server.auth_key),
        "priv_key_file": secret(tmp_path, "priv-key", server.priv_key),
        "timeout_s": 2, "retries": 0,
    } | more  # fmt: skip


def read_once(settings: dict[str, Any]) -> dict[str, Any]:
    """One read by a reader of these settings: {parameter: value, or "fault"}."""

    async def run() -> dict[str, Any]:
        reader = SnmpApReader(SnmpApSource.model_validate(settings))
        try:
            return by_name(await reader.read())
        finally:
            await reader.close()

    return asyncio.run(run())


def by_name(readings: tuple[Reading, ...]) -> dict[str, Any]:
    return {
        r.parameter: (r.value if r.quality is Quality.OK else r.quality.value) for r in readings
    }


UNIFI_CLIENTS = {
    "clients": 9.0,
    "clients.radio.ng": 5.0,
    "clients.radio.na": 4.0,
    "clients.ssid.phu_quoc_free_wifi": 8.0,
    "clients.ssid.staff": 1.0,
}


def test_v2c_reads_uptime_unifi_clients_per_radio_and_ssid(tmp_path, snmpd):
    first = read_once(v2c(tmp_path, snmpd, vendor="unifi", interfaces=["lo"]))
    assert first["reachable"] == 1.0
    assert 0 <= first["uptime"] < 60  # this snmpd started moments ago
    assert {k: v for k, v in first.items() if k.startswith("clients")} == UNIFI_CLIENTS
    # The first read has no traffic rate: a rate needs the read before.
    assert not [k for k in first if k.startswith("traffic")]


def test_v3_authpriv_reads_the_same(tmp_path, snmpd):
    first = read_once(v3(tmp_path, snmpd, vendor="unifi", interfaces=["lo"]))
    assert first["reachable"] == 1.0
    assert {k: v for k, v in first.items() if k.startswith("clients")} == UNIFI_CLIENTS


def loopback_traffic(datagrams: int, size: int) -> None:
    """Datagrams to ourselves over the loopback, whose counters snmpd reports."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source:
            for _ in range(datagrams):
                source.sendto(bytes(size), sink.getsockname())


def test_traffic_is_a_rate_from_the_64_bit_counters(tmp_path, snmpd):
    settings = v2c(tmp_path, snmpd, vendor="none", interfaces=["lo", "wlan9"])
    datagrams, size = 128, 65_000

    async def run() -> tuple[dict, dict, float]:
        reader = SnmpApReader(SnmpApSource.model_validate(settings))
        began = time.monotonic()
        first = by_name(await reader.read())
        loopback_traffic(datagrams, size)
        # net-snmp refreshes its interface counters at most every few seconds.
        await asyncio.sleep(5.5)
        second = by_name(await reader.read())
        elapsed = time.monotonic() - began
        await reader.close()
        return first, second, elapsed

    first, second, elapsed = asyncio.run(run())
    # An interface the AP does not list is a fault, so a renamed uplink shows.
    assert first["traffic_in.wlan9"] == second["traffic_out.wlan9"] == "fault"
    assert "traffic_in.lo" not in first
    # At least what was sent, over no more than the time both reads took; on the loopback
    # every byte is counted once out and once in.
    at_least = datagrams * size * 8 / elapsed
    assert second["traffic_in.lo"] >= at_least
    assert second["traffic_out.lo"] >= at_least
    assert "clients" not in second  # vendor none: no client table asked for


def test_mikrotik_radios_are_named_by_their_interface(tmp_path, snmpd):
    first = read_once(v2c(tmp_path, snmpd, vendor="mikrotik", interfaces=[]))
    assert {k: v for k, v in first.items() if k.startswith("clients")} == {
        "clients": 12.0,
        "clients.radio.lo": 12.0,
        "clients.ssid.pq-public": 12.0,
    }


def test_a_cisco_controller_counts_per_wlan_and_per_radio_band_of_its_aps(tmp_path, snmpd):
    first = read_once(v2c(tmp_path, snmpd, vendor="cisco-wlc", interfaces=[]))
    assert {k: v for k, v in first.items() if k.startswith("clients")} == {
        "clients": 42.0,
        "clients.ssid.pq-public": 40.0,
        "clients.ssid.pq-staff": 2.0,
        # bsnAPIfTable, summed per band over the APs: dot11b is 2.4 GHz, dot11a 5 GHz.
        "clients.radio.2.4ghz": 12.0,
        "clients.radio.5ghz": 26.0,
        "clients.radio.6ghz": 2.0,
        "clients.radio.slot3": 1.0,
        "clients.radio.type9": 1.0,
    }


def test_a_cisco_controller_without_ap_radios_still_counts_per_wlan(tmp_path, snmpd):
    radios = "1.3.6.1.4.1.14179.2.2.2"
    snmpd.set_values({k: v for k, v in VALUES.items() if not k.startswith(radios)})
    first = read_once(v3(tmp_path, snmpd, vendor="cisco-wlc", interfaces=[]))
    assert {k: v for k, v in first.items() if k.startswith("clients")} == {
        "clients": 42.0,
        "clients.ssid.pq-public": 40.0,
        "clients.ssid.pq-staff": 2.0,
    }


def test_an_ap_of_another_vendor_is_a_fault_clients_not_zero(tmp_path, snmpd, caplog):
    snmpd.set_values({k: v for k, v in VALUES.items() if not k.startswith(UNIFI)})
    first = read_once(v2c(tmp_path, snmpd, vendor="unifi", interfaces=[]))
    assert first["reachable"] == 1.0
    assert first["clients"] == "fault"
    assert "nothing in UBNT-UniFi-MIB unifiVapTable: is vendor 'unifi' right?" in caplog.text


def test_a_wrong_community_reads_unreachable_and_says_why(tmp_path, snmpd, caplog):
    settings = v2c(tmp_path, snmpd, vendor="unifi", timeout_s=0.5)
    settings["community_file"] = secret(tmp_path, "wrong", "not-the-community")
    with caplog.at_level(logging.WARNING):
        first = read_once(settings)
    assert first == {"reachable": 0.0, "uptime": "fault", "clients": "fault"}
    assert f"access point 127.0.0.1:{snmpd.port} (SNMP v2c)" in caplog.text
    assert "no answer to SNMPv2-MIB sysUpTime within 0.5 s, tried 1 time(s)" in caplog.text
    assert "down, or the community is wrong" in caplog.text


def test_a_wrong_priv_key_reads_unreachable_and_says_why(tmp_path, snmpd, caplog):
    settings = v3(tmp_path, snmpd, vendor="unifi", timeout_s=0.5)
    settings["priv_key_file"] = secret(tmp_path, "wrong", "not-the-priv-key")
    with caplog.at_level(logging.WARNING):
        first = read_once(settings)
    assert first == {"reachable": 0.0, "uptime": "fault", "clients": "fault"}
    assert "down, or the priv key or protocol is wrong" in caplog.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"user": "nobody"}, "Unknown USM user"),
        ({"auth_key": "wrong-auth-key"}, "Wrong SNMP PDU digest"),
    ],
)
def test_v3_credentials_the_ap_refuses_are_a_source_error(tmp_path, snmpd, change, error):
    settings = v3(tmp_path, snmpd, vendor="unifi")
    if "user" in change:
        settings["user"] = change["user"]
    else:
        settings["auth_key_file"] = secret(tmp_path, "bad-auth", change["auth_key"])
    with pytest.raises(SourceError, match=f"127.0.0.1:{snmpd.port} .SNMP v3.: .*{error}"):
        read_once(settings)


def test_unreadable_or_short_key_files_are_a_source_error_naming_the_key(tmp_path, snmpd):
    settings = v3(tmp_path, snmpd, vendor="unifi")
    settings["priv_key_file"] = str(tmp_path / "missing")
    with pytest.raises(SourceError, match=r"cannot read priv_key_file .*missing"):
        read_once(settings)
    settings = v3(tmp_path, snmpd, vendor="unifi", auth_key_file=secret(tmp_path, "s", "short"))
    with pytest.raises(SourceError, match=r"auth_key_file .* holds fewer than 8 characters"):
        read_once(settings)


def test_a_host_name_that_does_not_resolve_is_a_source_error(tmp_path):
    settings = {"type": "snmp_ap", "name": "ap", "host": "ap-12.invalid", "vendor": "unifi",
                "community_file": secret(tmp_path, "community", "c")}  # fmt: skip
    with pytest.raises(SourceError, match=r"access point ap-12\.invalid:161 \(SNMP v2c\): "):
        read_once(settings)


def test_nothing_listening_is_unreachable_then_reading_again_once_it_answers(tmp_path):
    # An AP down, then up, then rebooted: snmpd started on the port only after the first
    # read, then stopped and started again, with more engine boots as a rebooted AP has.
    server = Snmpd(tmp_path, VALUES)
    settings = v3(tmp_path, server, vendor="unifi", interfaces=["lo"])

    async def run() -> list[dict]:
        reader = SnmpApReader(SnmpApSource.model_validate(settings))
        down = by_name(await reader.read())
        server.start()
        try:
            up = by_name(await reader.read())
            server.stop()
            server.start()
            # The first request after the reboot may go to the old engine and be lost;
            # the reader then discovers the AP anew, and reads again at the next tick.
            for _ in range(3):
                again = by_name(await reader.read())
                if again["reachable"]:
                    break
        finally:
            server.stop()
            await reader.close()
        return [down, up, again]

    down, up, again = asyncio.run(run())
    assert down == {"reachable": 0.0, "uptime": "fault", "clients": "fault"}
    assert up["reachable"] == again["reachable"] == 1.0
    assert up["clients"] == again["clients"] == 9.0


@pytest.mark.parametrize(
    ("text", "part"),
    [("Phú Quốc Free WiFi", "phu_quoc_free_wifi"), ("Đảo Ngọc", "dao_ngoc"),
     ("eth0.10", "eth0.10"), ("", "unnamed"), ("☕☕", "unnamed")],
)  # fmt: skip
def test_names_become_parameter_names(text, part):
    assert name_part(text, 50) == part


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"version": "2c"}, "sources[0]: Value error, version 2c needs community_file"),
        ({"version": 3, "community_file": "c", "user": "u", "auth_key_file": "a",
          "priv_key_file": "p"}, "community_file: only for version 2c"),
        ({"version": 3, "user": "u"}, "version 3 needs auth_key_file, priv_key_file"),
        ({"community_file": "c", "user": "u"}, "user: only for version 3"),
        ({"community_file": "c", "version": 1}, "sources[0].version: Input should be '2c' or '3'"),
        ({"community_file": "c", "vendor": "aruba"}, "sources[0].vendor: Input should be"),
        ({"community_file": "c", "community": "public"}, "sources[0].community: unknown key"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(tmp_path, source, problem):
    config = tmp_path / "agent.yaml"
    entry = {"type": "snmp_ap", "name": "ap", "host": "10.0.0.5", "vendor": "unifi"} | source
    config.write_text(
        yaml.safe_dump(
            {"device": {"id": "wifi-1", "site": "dd", "kind": "wifi_ap", "name": "AP 1"},
             "state_dir": str(tmp_path / "state"), "sources": [entry]}
        )
    )  # fmt: skip
    with pytest.raises(ConfigError) as error:
        load_agent(config)
    assert problem in str(error.value)


def test_the_sample_config_loads():
    loaded = load_agent(Path(__file__).parents[3] / "configs" / "wifi-ap-snmp.yaml")
    assert [s.type for s in loaded.config.sources] == ["snmp_ap"]


def test_a_running_agent_sends_the_ap_readings_through_mosquitto_to_the_store(
    tmp_path, snmpd, mosquitto, processes
):
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "wifi-1", "site": "an-thoi", "kind": "wifi_ap", "name": "AP 1"},
                "broker": {"host": mosquitto.host, "port": mosquitto.port},
                "state_dir": str(tmp_path / "agent-state"),
                # A read may take 80 % of the interval (the poller's limit): the AP's
                # silence must be known sooner, for reachable to read 0, not fault.
                "sources": [v2c(tmp_path, snmpd, vendor="unifi", interfaces=["lo"],
                                interval_s=2, timeout_s=0.5)],
            }
        )
    )  # fmt: skip
    collector = collector_config(tmp_path, mosquitto, "collector-snmp")
    processes.start("collector", "collector", "run", "-c", str(collector))
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    processes.start("agent", "edge-agent", "run", "-c", str(config))
    store = tmp_path / "store.sqlite"

    def latest(parameter: str) -> float | None:
        if not store.exists():
            return None
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute(
                "SELECT value FROM readings WHERE device = 'wifi-1' AND sensor = 'ap'"
                " AND parameter = ? AND quality = 'ok' ORDER BY ts DESC LIMIT 1",
                (parameter,),
            ).fetchone()
        finally:
            db.close()
        return None if row is None else float(row[0])

    wait_until(lambda: latest("traffic_in.lo") is not None, 30, "traffic rates stored")
    assert latest("clients") == 9.0
    assert latest("clients.ssid.phu_quoc_free_wifi") == 8.0
    assert latest("reachable") == 1.0
    # The AP goes away: the box keeps running and the store sees it unreachable.
    snmpd.stop()
    wait_until(lambda: latest("reachable") == 0.0, 20, "reachable 0 stored")
    assert "Traceback" not in processes.log("agent")
