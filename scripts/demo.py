#!/usr/bin/env python3
"""`make demo`: the whole path on one machine, with no root and nothing installed system-wide.

An embedded broker (amqtt), four simulated stations of different kinds serving their
firmware profiles over Modbus TCP, a camera pole whose camera plays a generated street
video (demo_camera.py), one real `edge-agent` process per box, and a real `collector`
process writing to SQLite. The live view reads what reached the store, and a police
console prints the alert raised when the watched plate passes the pole; the summary
counts, per box, what the agent produced against what the collector stored; then the
environmental officer's export of the day runs as `collector export` would for them:
daily means judged against the Vietnamese limits, the means over their limit (the
wastewater plant's ammonium), and an HTML report with charts. Last, the Circular 10
station data files the collector wrote for each closed minute are shown as they arrived
on the authority's FTP server (pyftpdlib, local), sent by the collector's own uploader.
"""

import argparse
import asyncio
import contextlib
import csv
import io
import secrets
import shutil
import socket
import sqlite3
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import demo_camera  # beside this script
import demo_wall
import yaml
from rich.console import Console
from rich.table import Table

from collector.config import ExportSettings
from collector.query import ReadingQuery, ReadingRow
from collector.stores.sqlite import SqliteStore
from edge_agent.modbus.simulator import serve_tcp
from edge_agent.outbox import Outbox
from edge_agent.profiles import Profile, builtin_profiles_dir, load_profile
from iotwire.messages import PlateAlert

console = Console(highlight=False)
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Station:
    device: str
    site: str
    kind: str
    name: str
    profile: str
    sensor: str
    headline: tuple[str, ...]
    setting: dict[str, str | bool | float]
    simulated: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Parameter -> the range its simulator produces, over the profile's `typical`: what
    this station's process is doing today. The register map, and so the reading, is the
    profile's own."""

    @property
    def tt10_code(self) -> str:
        """Its code in the station data file names: ww-at-01 is WWAT01."""
        return self.device.replace("-", "").upper()


STATIONS = (
    Station(
        "air-dd-01",
        "duong-dong",
        "air",
        "Air, Duong Dong market",
        "pq-sim-air",
        "aqms",
        ("pm2_5", "pm10", "no2"),
        {"aqi": True},
    ),
    Station(
        "dw-dd-01",
        "duong-dong",
        "domestic_water",
        "Water plant outlet",
        "pq-sim-water",
        "sonde",
        ("ph", "turbidity", "free_chlorine"),
        {},
    ),
    Station(
        "ww-at-01",
        "an-thoi",
        "wastewater",
        "An Thoi WWTP discharge",
        "pq-sim-wastewater",
        "panel",
        ("cod", "nh4"),
        # An existing facility keeps QCVN 14:2008 until 2031-12-31: column B (it does not
        # discharge into a drinking-water source), K 1.2 for its type and size, so its
        # ammonium limit is 10 x 1.2 = 12 mg/L, judged on every hourly mean.
        {"column": "B", "k": 1.2, "existing_facility": True},
        # Its nitrification has failed today: ammonium runs at 14-22 mg/L (the profile's
        # typical 1-12), over the limit whatever the hour, so the export has an
        # exceedance to show.
        {"nh4": (14.0, 22.0)},
    ),
    Station(
        "noise-dd-01",
        "duong-dong",
        "noise",
        "Night market noise",
        "pq-sim-noise",
        "slm",
        ("laeq", "lamax"),
        {"zone": "normal"},
    ),
)


FTP_USER = "kg-authority"
TT10_EVERY_S = 60  # the shortest interval the collector allows, so the demo sees one close
TT10_DELAY_S = 5  # the agents' samples arrive within moments; a real site waits minutes
UPLOAD_SCAN_S = 1


def simulated_profile(station: Station) -> Profile:
    """The station's profile with the simulator's ranges it overrides."""
    profile = load_profile(builtin_profiles_dir() / f"{station.profile}.yaml")
    points = tuple(
        p.model_copy(update={"typical": station.simulated[p.parameter]})
        if p.parameter in station.simulated
        else p
        for p in profile.points
    )
    return profile.model_copy(update={"points": points})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on port {port} after {timeout_s:g} s"
                ) from None
            await asyncio.sleep(0.2)
        else:
            writer.close()
            return


async def wait_for_log(path: Path, text: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in await asyncio.to_thread(path.read_text, errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never said {text!r}; see {path}")
        await asyncio.sleep(0.1)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


async def start(name: str, args: list[str], logs: Path) -> asyncio.subprocess.Process:
    log = (logs / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log)


async def stop(process: asyncio.subprocess.Process, timeout_s: float = 15.0) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()


def describe(rows: list[ReadingRow], headline: tuple[str, ...]) -> str:
    by_name = {r.parameter: r for r in rows}
    parts = [
        f"{p} {by_name[p].value:.3g} {by_name[p].unit}"
        if by_name[p].value is not None
        else f"{p} {by_name[p].quality}"
        for p in headline
        if p in by_name
    ]
    more = len(rows) - len(parts)
    return " · ".join(parts) + (f" (+{more})" if more else "")


class LiveView:
    """Prints each sample once, as it appears in the store."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._after = datetime.now(UTC) - timedelta(minutes=1)
        self._printed: set[tuple[str, datetime]] = set()
        self._stations = {s.device: s for s in STATIONS}

    def show_new(self) -> None:
        rows = self._store.query(ReadingQuery(start=self._after, limit=100_000))
        samples: dict[tuple[str, datetime], list[ReadingRow]] = defaultdict(list)
        for row in rows:
            if (row.device, row.ts) not in self._printed:
                samples[(row.device, row.ts)].append(row)
        for (device, ts), readings in sorted(samples.items(), key=lambda item: item[0][1]):
            self._printed.add((device, ts))
            station = self._stations[device]
            console.print(
                f"{ts:%H:%M:%S} [bold]{device:<11}[/bold] {station.kind:<14} "
                f"{describe(readings, station.headline)}"
            )


async def demo(duration_s: float, interval_s: float, workdir: Path) -> int:
    shutil.rmtree(workdir, ignore_errors=True)
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    broker_port = free_port()
    store_path = workdir / "telemetry.sqlite"
    # amqtt speaks MQTT 3.1.1 only; saying so spares each client an MQTT 5 attempt.
    broker = {"host": "127.0.0.1", "port": broker_port, "protocol": "3.1.1"}

    broker_config = write_yaml(
        workdir / "broker.yaml",
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{broker_port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        },
    )
    # The authority's server, played by pyftpdlib: a user and a folder for this run only.
    # Plain FTP is acceptable here since nothing leaves the loopback interface; a real
    # collector uses `protocol: ftps` (the default) unless the authority offers nothing else.
    ftp_port, ftp_root = free_port(), workdir / "ftp-authority"
    ftp_root.mkdir()
    # Hex never starts with "-", which pyftpdlib's argument parser would take for an option.
    ftp_password = secrets.token_hex(16)
    password_file = workdir / "ftp-password"
    password_file.write_text(ftp_password, encoding="utf-8")
    password_file.chmod(0o600)
    # pyftpdlib takes the throwaway password on its command line; the collector reads it
    # from its password file, as in production.
    ftp_server = [sys.executable, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(ftp_port)]
    ftp_server += ["-d", str(ftp_root), "-w", "-u", FTP_USER, "-P", ftp_password]
    processes = {
        "broker": await start("broker", [str(BIN / "amqtt"), "-c", str(broker_config)], logs),
        "ftp": await start("ftp", ftp_server, logs),
    }
    simulators = []
    alerts: list[PlateAlert] = []
    video = workdir / "street.avi"
    plate = await asyncio.to_thread(demo_camera.make_video, video, min(8.0, duration_s / 4))
    wall_port = demo_wall.api_port()
    try:
        await wait_for_port(broker_port)
        await wait_for_port(ftp_port)
        collector_config = write_yaml(
            workdir / "collector.yaml",
            {
                "broker": broker,
                "store": {"kind": "sqlite", "path": str(store_path)},
                "ingest": {"client_id": "collector-demo"},
                "stations": {
                    s.device: {
                        "kind": s.kind,
                        "name": s.name,
                        "tt10_code": s.tt10_code,
                        **s.setting,
                    }
                    for s in STATIONS
                },
                # A demo holds seconds of data, not hours: its means are valid with a
                # sliver of an hour. A real collector keeps the defaults (75 %, 18 h).
                "export": {"hour_min_share": 0.001, "day_min_hours": 1},
                # A file per station and minute, written once the minute has ended and
                # TT10_DELAY_S passed, then sent by the collector's uploader.
                "tt10": {
                    "directory": str(workdir / "tt10"),
                    "province": "KG",
                    "facility": "PQ",
                    "every_s": TT10_EVERY_S,
                    "delay_s": TT10_DELAY_S,
                    "upload": {
                        "protocol": "ftp",
                        "host": "127.0.0.1",
                        "port": ftp_port,
                        "username": FTP_USER,
                        "password_file": str(password_file),
                        "scan_every_s": UPLOAD_SCAN_S,
                    },
                },
                "alerts": {"path": str(workdir / "police.sqlite")},
                "registry": {"path": str(workdir / "devices.sqlite")},
                "api": {"port": wall_port, "users_path": str(workdir / "users.sqlite")},
            },
        )
        await demo_camera.register_and_watch(workdir, collector_config, plate)
        await demo_wall.register_stations(
            collector_config,
            [demo_wall.bundle(workdir, s.device, s.site, s.kind, s.name) for s in STATIONS],
        )
        passwords = await demo_wall.add_users(collector_config)
        processes["collector"] = await start(
            "collector", [str(BIN / "collector"), "run", "-c", str(collector_config)], logs
        )
        # Agents start sending at once; a message that reaches the broker before the
        # collector's first subscription has no session to wait in.
        await wait_for_log(logs / "collector.log", "subscribed to")
        police = asyncio.create_task(demo_camera.police_console(broker, console, alerts))
        for index, station in enumerate(STATIONS):
            port = free_port()
            profile = simulated_profile(station)
            simulators.append(await serve_tcp({1: profile}, "127.0.0.1", port, seed=index))
            config = write_yaml(
                workdir / f"{station.device}.yaml",
                {
                    "device": {
                        "id": station.device,
                        "site": station.site,
                        "kind": station.kind,
                        "name": station.name,
                    },
                    "broker": broker,
                    "state_dir": str(workdir / "state" / station.device),
                    "buses": [{"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": port}],
                    "sources": [
                        {
                            "name": station.sensor,
                            "type": "modbus",
                            "bus": "gw",
                            "profile": station.profile,
                            "interval_s": interval_s,
                        }
                    ],
                    "health": {"interval_s": 10},
                },
            )
            processes[station.device] = await start(
                station.device, [str(BIN / "edge-agent"), "run", "-c", str(config)], logs
            )
        camera_config = write_yaml(
            workdir / f"{demo_camera.DEVICE}.yaml",
            demo_camera.agent_config(workdir, broker, video),
        )
        processes[demo_camera.DEVICE] = await start(
            demo_camera.DEVICE, [str(BIN / "edge-agent"), "run", "-c", str(camera_config)], logs
        )

        console.print(
            f"[bold]Phu Quoc field telemetry demo[/bold]: {len(STATIONS)} simulated "
            f"stations, {duration_s:g} s, a sample every {interval_s:g} s per station"
        )
        console.print(f"  broker     amqtt (embedded) on 127.0.0.1:{broker_port}")
        console.print(f"  collector  SQLite store {store_path}")
        console.print(
            f"  FTP        the authority's server (pyftpdlib) on 127.0.0.1:{ftp_port}, "
            f"user {FTP_USER}, folder {ftp_root}"
        )
        console.print(
            f"  camera     {demo_camera.DEVICE} plays {video.name}: a car with plate "
            f"{plate.display}, on the police watchlist, passes in a few seconds"
        )
        console.print(
            f"  wall       http://127.0.0.1:{wall_port}/wall, sign in as duty / "
            f"{passwords['duty']} (operations) or police / {passwords['police']} (plates)"
        )
        console.print(f"  logs       {logs}/\n")

        store = SqliteStore(store_path)
        view = LiveView(store)
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            view.show_new()
            crashed = [n for n, p in processes.items() if p.returncode is not None]
            if crashed:
                console.print(f"[red]stopped unexpectedly: {', '.join(crashed)}; see {logs}/[/red]")
                return 1

        console.print("\nstopping agents (each drains its outbox before it exits)...")
        agents = [*(s.device for s in STATIONS), demo_camera.DEVICE]
        await asyncio.gather(*(stop(processes[device]) for device in agents))
        produced = {}
        for device in agents:
            outbox = Outbox(workdir / "state" / device / "outbox.sqlite")
            produced[device] = (outbox.last_seq(), outbox.depth())
            outbox.close()
        expected = sum(p - left for p, left in produced.values())
        for _ in range(50):  # the collector stores the last messages within moments
            if sum(d.messages for d in store.devices()) >= expected:
                break
            await asyncio.sleep(0.2)
        view.show_new()
        for _ in range(50):
            if alerts:
                break
            await asyncio.sleep(0.2)
        police.cancel()
        lost = summary(store, produced, workdir / "police.sqlite")
        if not alerts:
            console.print(f"[red]no police alert for {plate.display}; see {logs}/[/red]")
            return 1
        demo_camera.print_audit(workdir / "police.sqlite", console)
        if not await show_wall(wall_port, passwords["police"], len(agents)):
            return 1
        if lost or await officer_export(collector_config, workdir):
            return 1
        failed = await show_uploaded(ftp_root, logs)
        if not failed and sys.stdin.isatty():
            console.print(
                f"\nThe wall stays at http://127.0.0.1:{wall_port}/wall (the boxes now offline,"
                " the alert and the day's values kept) until you press Enter."
            )
            await asyncio.to_thread(sys.stdin.readline)
        return failed
    finally:
        for server in simulators:
            await server.shutdown()
        for process in reversed(processes.values()):
            await stop(process)


async def show_wall(port: int, police_password: str, boxes: int) -> bool:
    """What a police officer's wall shows once signed in: every box on the map, the
    alert on the police panel."""
    snapshot = await asyncio.to_thread(demo_wall.wall_snapshot, port, "police", police_password)
    devices, alerts = snapshot["devices"], snapshot["alerts"]
    placed = [d for d in devices if d["lat"] is not None]
    console.print(
        f"\nThe wall: {len(placed)} of {boxes} boxes on the island map, "
        f"{len(alerts)} police alert on the police panel "
        f"({', '.join(a['display'] for a in alerts)})"
    )
    if len(placed) < boxes or not alerts:
        console.print("[red]the wall misses boxes or the alert; see the collector's log[/red]")
        return False
    return True


def summary(store: SqliteStore, produced: dict[str, tuple[int, int]], police: Path) -> int:
    devices = {d.device: d for d in store.devices()}
    kinds = {s.device: s.kind for s in STATIONS} | {demo_camera.DEVICE: "camera_pole"}
    with contextlib.closing(sqlite3.connect(police)) as db:
        [(plates,)] = db.execute("SELECT count(*) FROM plate_reads").fetchall()
    table = Table(
        "box",
        "kind",
        "samples",
        "sent",
        "stored",
        "dups",
        "gaps",
        "queued",
        "lost",
        title="Messages per box: sent by the agent, stored by the collector"
        " (a camera's samples are plate reads)",
    )
    total_lost, silent = 0, []
    for device, (made, left) in produced.items():
        row = devices.get(device)
        stored = row.messages if row else 0
        rows = store.query(ReadingQuery(devices=(device,), limit=10_000_000))
        samples = plates if device == demo_camera.DEVICE else len({r.ts for r in rows})
        lost = made - left - stored
        total_lost += lost
        if samples == 0:
            silent.append(device)
        table.add_row(
            device,
            kinds[device],
            str(samples),
            str(made),
            str(stored),
            str(row.duplicates if row else 0),
            str(row.gaps if row else 0),
            str(left),
            f"[red]{lost}[/red]" if lost else "0",
        )
    console.print(table)
    store.close()
    if total_lost or silent:
        console.print(
            f"[red]lost {total_lost} message(s); no samples from: {silent or 'none'}[/red]"
        )
        return 1
    console.print("[green]every message the agents produced is in the store, exactly once.[/green]")
    return 0


async def officer_export(config: Path, workdir: Path) -> int:
    """Today's export as the environmental officer runs it: the daily means in a table,
    and the HTML report with a chart per station and parameter."""
    today = datetime.now(ExportSettings().zone).date().isoformat()
    base = [str(BIN / "collector"), "export", "-c", str(config), "--from", today]
    report = workdir / "report.html"
    table_run = await asyncio.create_subprocess_exec(
        *base, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await table_run.communicate()
    html_run = await asyncio.create_subprocess_exec(
        *base, "--format", "html", "--out", str(report), stderr=asyncio.subprocess.PIPE
    )
    _, html_err = await html_run.communicate()
    # The same report as the officer reads it in Vietnamese (dd/mm/yyyy, decimal commas,
    # the VN_AQI bands' names and health advice as Decision 1459 words them).
    report_vi = workdir / "report-vi.html"
    vi_run = await asyncio.create_subprocess_exec(
        *base, "--format", "html", "--lang", "vi", "--out", str(report_vi),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, vi_err = await vi_run.communicate()
    if table_run.returncode or html_run.returncode or vi_run.returncode:
        console.print(f"[red]export failed: {(err + html_err + vi_err).decode()}[/red]")
        return 1
    table = Table(
        "station",
        "parameter",
        "period",
        "mean",
        "unit",
        "limit",
        "exceeded",
        "regulation",
        title=f"Export for the environmental officer, {today} (local): the day's means",
    )
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    headline = {s.device: s.headline for s in STATIONS}
    for row in rows:
        if row["averaging"] not in ("24h", "day", "night"):
            continue
        if row["parameter"] not in headline[row["station"]]:
            continue
        value = f"{float(row['value']):.3g}" if row["value"] else "invalid"
        exceeded = "[red]yes[/red]" if row["exceeded"] == "yes" else row["exceeded"] or "-"
        table.add_row(
            row["station"],
            row["parameter"],
            row["averaging"],
            value,
            row["unit"],
            row["limit"] or "-",
            exceeded,
            row["regulation"].split(",")[0] or "no limit in force",
        )
    console.print(table)
    console.print(
        f"{err.decode().strip()}; HTML report with charts: {report}, in Vietnamese: {report_vi}"
    )
    show_exceedances(rows)
    return 0


def show_exceedances(rows: list[dict[str, str]]) -> None:
    """Every mean the export judged over its limit, whatever its averaging: the daily
    table above leaves out the hourly means, on which the wastewater limits are judged."""
    over = [row for row in rows if row["exceeded"] == "yes"]
    if not over:
        console.print("[yellow]no mean over its limit today[/yellow]")
        return
    names = {s.device: s.name for s in STATIONS}
    table = Table(
        "station",
        "parameter",
        "mean of (local)",
        "mean",
        "limit",
        title="[red]Exceedances[/red]: means over the limit in force today",
    )
    table.add_column("regulation", overflow="fold")
    for row in over:
        start, end = (datetime.fromisoformat(row[key]) for key in ("start", "end"))
        table.add_row(
            f"{row['station']}\n{names[row['station']]}",
            row["parameter"],
            f"{row['averaging']} {start:%H:%M}-{end:%H:%M}",
            f"[red]{float(row['value']):.3g} {row['unit']}[/red]",
            f"{row['limit']} {row['unit']}",
            row["regulation"],
        )
    console.print(table)


async def show_uploaded(root: Path, logs: Path) -> int:
    """Wait until every station's first minute with data has ended, its file is written
    and the collector's uploader has sent it, then show what the authority's server holds.
    The wait is bounded: every station has sampled for a while, so a minute with its data
    ends within an interval of now, and its file goes out a delay and a scan later."""
    codes = {s.tt10_code for s in STATIONS}
    timeout_s = TT10_EVERY_S + TT10_DELAY_S + UPLOAD_SCAN_S + 15
    console.print(
        f"\nwaiting for the first one-minute interval with data to end, for the collector "
        f"to write its station data files {TT10_DELAY_S} s after it, and for its uploader "
        f"to send them to the FTP server (at most {timeout_s} s)..."
    )
    deadline = time.monotonic() + timeout_s
    files = await asyncio.to_thread(received, root)
    while codes - {station_code(p) for p in files}:
        if time.monotonic() > deadline:
            console.print(f"[red]station data files missing on the FTP server; see {logs}/[/red]")
            return 1
        await asyncio.sleep(0.5)
        files = await asyncio.to_thread(received, root)
    wastewater = next(s.tt10_code for s in STATIONS if s.kind == "wastewater")
    print_received(files, next(p for p in files if station_code(p) == wastewater))
    return 0


def received(root: Path) -> list[Path]:
    """The files whole on the server: the uploader renames each from `.part` once sent."""
    return sorted(root.glob("*.txt"))


def station_code(path: Path) -> str:
    """`Province_Facility_Station_yyyyMMddHHmmss.txt`: the station's part."""
    return path.name.split("_")[2]


def print_received(files: list[Path], shown: Path) -> None:
    """The names, and the lines of one file: the wastewater station's, whose NH4 is the
    hourly exceedance above as the authority receives it, a minute at a time."""
    console.print(f"Station data files on the authority's FTP server, {shown.parent}:")
    for path in files:
        console.print(f"  {path.name}")
    lines = Table(
        "code",
        "value",
        "unit",
        "time",
        "status",
        title=f"{shown.name}: a line per parameter, TAB-separated (Circular 10/2021)",
    )
    for line in shown.read_text(encoding="utf-8").splitlines():
        lines.add_row(*line.split("\t"))
    console.print(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=40, help="seconds of live data")
    parser.add_argument("--interval", type=float, default=2, help="seconds between samples")
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"))
    args = parser.parse_args()
    sys.exit(asyncio.run(demo(args.duration, args.interval, args.workdir.resolve())))


if __name__ == "__main__":
    main()
