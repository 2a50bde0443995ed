"""The camera pole of `make demo`: a vehicle whose plate the police watch drives past.

The video is generated here (a street, then one car passing, as `edge_agent.plates.
synthetic` draws it) and played by a real `edge-agent` as its camera; the plate is read
on the agent with the ONNX models and sent as one plate event. Before that, the pole is
registered with the collector as a technician would (`collector devices import`) and an
officer puts the plate on the watchlist (`collector watchlist add`). A police console,
here a plain MQTT subscriber, prints the alert as it arrives.
"""

import asyncio
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from rich.console import Console
from rich.table import Table

from collector.police import audit
from collector.police.database import PoliceDb
from iotwire.messages import PlateAlert
from iotwire.plate_formats import Plate
from iotwire.topics import alerts_topic
from testbed.plate_scenes import FONT_DIR, FONTS, Layout, passing_vehicle, write_video

BIN = Path(sys.executable).parent
DEVICE = "cam-dd-07"
SITE = "duong-dong"
NAME = "Camera pole 7, Tran Hung Dao x Nguyen Trung Truc"
LAT, LON = 10.2149, 103.9588
REASON = "snatch theft reported at Duong Dong night market"
FPS = 10
SEED = 7


def make_video(path: Path, lead_s: float) -> Plate:
    """An empty street for `lead_s`, then one car passing; the plate it carries. Without
    Debian's DejaVu fonts the plate is lettered in OpenCV's own font."""
    fonts = FONTS if all(f is None or (FONT_DIR / f).is_file() for f in FONTS) else (None,)
    rng = random.Random(SEED)  # noqa: S311 - the same street every run
    images, plate = passing_vehicle(rng, Layout.CAR_ONE_ROW, fonts=fonts)
    street = images[-1]
    write_video(str(path), [street] * int(lead_s * FPS) + images, fps=FPS)
    return plate


async def run(*args: str, stdin: str | None = None) -> str:
    """A project command, given `stdin` as a line; its output, or an error with it."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / args[0]),
        *args[1:],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(f"{stdin}\n".encode() if stdin is not None else None)
    if process.returncode:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {out.decode()}")
    return out.decode()


async def register_and_watch(workdir: Path, collector_config: Path, plate: Plate) -> None:
    """The technician's registration of the pole and the officer's watchlist entry."""
    bundle = workdir / f"{DEVICE}.registration.yaml"
    bundle.write_text(
        f"device: {DEVICE}\nsite: {SITE}\nkind: camera_pole\nname: {NAME}\n"
        f"location: {{lat: {LAT}, lon: {LON}}}\n",
        encoding="utf-8",
    )
    config = str(collector_config)
    await run("collector", "devices", "import", "-c", config, str(bundle))
    await run(
        "collector",
        "watchlist",
        "add",
        "-c",
        config,
        plate.display,
        "--reason",
        REASON,
        "--priority",
        "high",
        "--by",
        "officer-tran",
    )


def agent_config(workdir: Path, broker: dict[str, object], video: Path) -> dict[str, object]:
    return {
        "device": {
            "id": DEVICE,
            "site": SITE,
            "kind": "camera_pole",
            "name": NAME,
            "location": {"lat": LAT, "lon": LON},
        },
        "broker": broker,
        "state_dir": str(workdir / "state" / DEVICE),
        "cameras": [{"name": "north", "url": str(video), "max_fps": FPS}],
        "health": {"interval_s": 10},
    }


async def police_console(
    broker: dict[str, object], console: Console, seen: list[PlateAlert]
) -> None:
    """Print each alert as a police console would show it, until cancelled."""
    host, port = str(broker["host"]), int(str(broker["port"]))
    async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V311) as client:
        await client.subscribe(alerts_topic("pq", "plate"), qos=1)
        async for message in client.messages:
            alert = PlateAlert.model_validate_json(bytes(message.payload))
            seen.append(alert)
            after = (datetime.now(UTC) - alert.ts).total_seconds()
            where = (
                f"{alert.pole.name} ({alert.pole.lat}, {alert.pole.lon})"
                if alert.pole
                else alert.device
            )
            console.print(
                f"{alert.ts:%H:%M:%S} [bold red]POLICE ALERT[/bold red] {alert.display} "
                f"{alert.match} match, priority {alert.priority}: {alert.reason}\n"
                f"         at {where}, camera {alert.camera}; "
                f"on the console {after:.1f} s after the frame it was read in"
            )


def print_audit(police: Path, console: Console) -> None:
    """The audit trail as police read it (`collector audit`), one line per event."""
    db = PoliceDb(police)
    records = audit.records(db)
    db.close()
    table = Table("time", "actor", "action", "subject", "detail", title="Police audit trail")
    for r in records:
        detail = r.detail.get("reason") or r.detail.get("channel") or r.detail.get("match", "")
        table.add_row(f"{r.at:%H:%M:%S}", r.actor, r.action, r.subject[:12], str(detail))
    console.print(table)
