"""Access-point client counts from iw and hostapd output."""

import asyncio

import pytest

from edge_agent.config import WifiApSource
from edge_agent.sources.base import SourceError
from edge_agent.sources.wifi_ap import WifiApReader, parse_hostapd_all_sta, parse_iw_station_dump
from tests.helpers import FIXTURES


def test_iw_station_dump_counts_authorized_stations_across_driver_variants():
    # The last two stations have the shapes other drivers print: no signal lines at all
    # (brcmfmac), and HE bitrates with a "last ack signal" line (mt7921u).
    clients = parse_iw_station_dump((FIXTURES / "iw-station-dump.txt").read_text())
    assert [(c.authorized, c.signal_dbm) for c in clients] == [
        (True, -58),
        (True, -71),
        (False, -85),
        (True, None),
        (True, -62),
    ]


def test_hostapd_all_sta_counts_authorized_stations():
    clients = parse_hostapd_all_sta((FIXTURES / "hostapd-all-sta.txt").read_text())
    assert [(c.authorized, c.signal_dbm) for c in clients] == [
        (True, -58),
        (True, -71),
        (False, -85),
    ]


@pytest.mark.parametrize("text", ["", "garbage\nmore garbage\n", "Station nonsense\n\tsignal: x\n"])
def test_empty_or_foreign_output_is_no_clients(text):
    assert parse_iw_station_dump(text) == []
    assert parse_hostapd_all_sta(text) == []


def read(**settings) -> tuple:
    return asyncio.run(WifiApReader(WifiApSource(type="wifi_ap", name="ap", **settings)).read())


@pytest.mark.parametrize(
    ("method", "fixture", "clients", "signal"),
    [("iw", "iw-station-dump.txt", 4.0, -63.7), ("hostapd", "hostapd-all-sta.txt", 2.0, -64.5)],
)
def test_the_reader_runs_the_command_and_reports_count_and_signal(method, fixture, clients, signal):
    readings = read(method=method, command=["cat", str(FIXTURES / fixture)])
    assert [(r.parameter, r.value, r.unit) for r in readings] == [
        ("clients", clients, "count"),
        ("clients_signal_avg", signal, "dBm"),
    ]


def test_a_failing_command_is_a_source_error_with_its_message():
    with pytest.raises(SourceError, match=r"exit status 1: .*No such file"):
        read(command=["cat", "/nonexistent/station-dump"])


def test_a_missing_tool_is_a_source_error():
    with pytest.raises(SourceError, match="cannot run no-such-tool"):
        read(command=["no-such-tool"])


def test_a_hung_command_is_stopped_at_its_timeout():
    with pytest.raises(SourceError, match=r"no answer within 0\.3 s"):
        read(command=["sleep", "10"], timeout_s=0.3)
