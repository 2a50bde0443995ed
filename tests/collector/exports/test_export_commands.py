"""`collector export` and the API's /export as the environmental officer meets them: real
processes over a store that holds the known dataset of export_cases.py, beside this file."""

import csv
import io
import json
import urllib.error
import urllib.request
from datetime import UTC

import pytest
import yaml
from openpyxl import load_workbook

from collector.stores.sqlite import SqliteStore
from testbed.processes import run_cli
from testbed.waiting import free_port, wait_for_port, wait_until
from tests.collector.exports.export_cases import D1, D2, load, local

pytestmark = pytest.mark.servers  # every test runs `collector export`


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("dataset") / "store.sqlite"
    store = SqliteStore(path)
    load(store)
    store.close()
    return path


def config_for(tmp_path, dataset, **sections: object):
    store_path = tmp_path / "store.sqlite"
    store_path.write_bytes(dataset.read_bytes())
    config = tmp_path / "collector.yaml"
    body = {
        "store": {"kind": "sqlite", "path": str(store_path)},
        "stations": {
            "air-1": {"kind": "air", "name": "Air, market", "aqi": True, "tt10_code": "AIR01"},
            "noise-1": {"kind": "noise", "zone": "normal"},
        },
        "tt10": {"directory": str(tmp_path / "tt10"), "province": "KG", "facility": "PQ"},
    }
    config.write_text(yaml.safe_dump(body | sections), encoding="utf-8")
    return config


def export(config, *args: str):
    return run_cli("collector", "export", "-c", str(config), "--from", str(D1), *args)


def test_csv_on_stdout_and_a_workbook_on_disk(tmp_path, dataset):
    config = config_for(tmp_path, dataset)
    answer = export(config, "--to", str(D2))
    assert answer.returncode == 0, answer.stderr
    rows = list(csv.DictReader(io.StringIO(answer.stdout)))
    exceeded = {
        (r["station"], r["parameter"], r["averaging"]) for r in rows if r["exceeded"] == "yes"
    }
    assert exceeded == {("air-1", "pm2_5", "24h"), ("noise-1", "laeq", "night")}
    assert "2 station(s), local days" in answer.stderr
    # air-1: 94 judged, 103 not; noise-1: 3 and 51 (test_exports.py works them out).
    assert "2 exceedance(s) in 97 judged mean(s), 154 not judged" in answer.stderr
    assert list(rows[0])[17:] == ["judged", "limit_min", "limit_max", "flags", "measured_unit"]

    out = tmp_path / "air.xlsx"
    answer = export(config, "--to", str(D2), "--kind", "air", "--format", "xlsx", "--out", str(out))
    assert answer.returncode == 0, answer.stderr
    assert load_workbook(out).sheetnames == ["Summary", "air-1"]


def test_the_terminal_says_per_station_and_parameter_what_was_not_judged(tmp_path, dataset):
    answer = export(config_for(tmp_path, dataset), "--to", str(D2))
    assert answer.returncode == 0, answer.stderr
    lines = answer.stderr.splitlines()
    pm = next(line for line in lines if "pm2_5" in line and "air-1" in line)
    # 50 means, 2 judged, 48 not, 1 exceedance, none flagged, and why the 48 were not.
    assert [cell.strip() for cell in pm.split("│")[1:-1]] == [
        "air-1",
        "pm2_5",
        "µg/m³",
        "50",
        "2",
        "48",
        "1",
        "0",
        "1h ×48: no limit in force on this day",
    ]
    o3 = next(line for line in lines if " o3 " in line)
    assert "µg/m³ (from ppb)" in o3


def test_query_and_latest_tables_show_times_in_the_site_zone(tmp_path, dataset):
    config = config_for(tmp_path, dataset)
    since = local(D1, 9).isoformat()
    until = local(D1, 9, 5).isoformat()
    args = ("-c", str(config), "--device", "air-1", "--parameter", "pm10")
    table = run_cli("collector", "query", *args, "--since", since, "--until", until)
    assert table.returncode == 0, table.stdout + table.stderr
    assert "ts (Asia/Ho_Chi_Minh)" in table.stdout
    assert f"{D1} 09:00:00" in table.stdout  # 02:00 UTC
    as_csv = run_cli("collector", "query", *args, "--since", since, "--until", until, "--csv")
    [row] = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert row["ts"] == local(D1, 9).astimezone(UTC).isoformat()
    latest = run_cli("collector", "latest", *args)
    assert latest.returncode == 0, latest.stdout + latest.stderr
    assert "ts (Asia/Ho_Chi_Minh)" in latest.stdout
    assert f"{D2} 23:50:00" in latest.stdout


def test_station_data_files_on_demand(tmp_path, dataset):
    config = config_for(tmp_path, dataset)
    out = tmp_path / "files"
    answer = export(config, "--to", str(D2), "--format", "tt10", "--out", str(out))
    assert answer.returncode == 0, answer.stderr
    files = sorted(out.glob("KG_PQ_AIR01_*.txt"))
    # A sample every 10 minutes lands in every other 5-minute interval: 6 files an hour
    # for 48 hours, less the 2 samples D1 04:00-05:00 is missing. noise-1 has no code.
    assert len(files) == 48 * 6 - 2
    assert len(list(out.iterdir())) == len(files)
    first = files[0]
    assert first.name == f"KG_PQ_AIR01_{local(D1, 0, 5):%Y%m%d%H%M%S}.txt"
    assert first.read_text(encoding="utf-8").splitlines() == [
        f"O3\t40.000\tppb\t{local(D1, 0, 5):%Y%m%d%H%M%S}\t00",
        f"PM10\t60.000\tµg/m³\t{local(D1, 0, 5):%Y%m%d%H%M%S}\t00",
        f"PM2,5\t30.000\tµg/m³\t{local(D1, 0, 5):%Y%m%d%H%M%S}\t00",
    ]
    assert f"{len(files)} station data file(s)" in answer.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--station", "air-9"), "not a configured station: air-9 (known: air-1, noise-1)"),
        (("--kind", "seawater"), "no station of kind seawater (configured: air, noise)"),
        (("--to", "2020-01-01"), "is before --from"),
        (("--format", "html"), "--format html needs --out FILE"),
    ],
)
def test_bad_requests_say_what_to_fix(tmp_path, dataset, args, message):
    answer = export(config_for(tmp_path, dataset), *args)
    assert answer.returncode == 2
    assert message in " ".join(answer.stdout.split())


def test_a_station_setting_that_does_not_fit_its_kind_names_file_and_key(tmp_path, dataset):
    config = config_for(tmp_path, dataset, stations={"air-1": {"kind": "air", "column": "A"}})
    answer = export(config)
    assert answer.returncode == 2
    text = " ".join(answer.stdout.split())
    assert str(config) in text
    assert "stations.air-1" in text
    assert "column (A or B) is set for wastewater stations and only for them" in text


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - test server
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_api_serves_exports_to_env_and_ops_only(tmp_path, dataset, mosquitto, processes):
    port = free_port()
    config = config_for(
        tmp_path,
        dataset,
        broker={"host": mosquitto.host, "port": mosquitto.port},
        ingest={"client_id": "collector-export"},
        api={"port": port, "users_path": str(tmp_path / "users.sqlite")},
    )
    tokens = {}
    for role in ("env", "ops", "police", "technician"):
        added = run_cli("collector", "users", "add", "-c", str(config), f"u-{role}", "--role", role)
        assert added.returncode == 0, added.stdout
        tokens[role] = added.stdout.strip().splitlines()[-1]
    processes.start("collector", "collector", "run", "-c", str(config))
    wait_for_port(port)
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    base = f"http://127.0.0.1:{port}/export?from={D1}&to={D2}"
    # The collector's schedule for station data files is running: it has recorded the
    # interval it wrote up to (the dataset is days old, so that interval held no files).
    state = tmp_path / "tt10" / ".tt10-last"
    wait_until(state.exists, 10, "the station data file schedule")

    status, body = get(f"{base}&format=xlsx&station=air-1", tokens["env"])
    assert status == 200
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["Summary", "air-1"]
    status, body = get(f"{base}&format=html", tokens["ops"])
    assert status == 200
    assert body.count(b'<figure class="chart"') == 4
    assert b'<html lang="en"' in body
    status, body = get(f"{base}&format=html&lang=vi", tokens["env"])
    assert status == 200
    assert b'<html lang="vi"' in body
    assert "Báo cáo kết quả quan trắc môi trường".encode() in body

    for role in ("police", "technician"):
        status, body = get(f"{base}&format=csv", tokens[role])
        assert status == 403, role
        assert json.loads(body)["detail"] == f"role {role} may not use this"

    bad = {
        f"http://127.0.0.1:{port}/export?from={D2}&to={D1}": f"to ({D1}) is before from ({D2})",
        f"{base}&station=air-9": "not a configured station: air-9",
        f"{base}&format=pdf": "Input should be 'csv', 'xlsx' or 'html'",
        f"http://127.0.0.1:{port}/export?to={D2}": "Field required",
        f"http://127.0.0.1:{port}/export?from=2024-01-01&to=2026-01-01": "at most 366 days",
    }
    for url, message in bad.items():
        status, body = get(url, tokens["env"])
        assert status == 422, url
        assert message in body.decode(), body
