"""The demo's wall: the stations registered where they stand on the island, a duty
officer and a police officer who can sign in, and a look at what the wall shows once the
police alert has been raised, as a browser would see it after signing in."""

import http.client
import json
import secrets
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from demo_camera import run  # beside this script

PLACES = {
    "air-dd-01": (10.2163, 103.9601),
    "dw-dd-01": (10.2290, 103.9745),
    "ww-at-01": (10.0245, 104.0090),
    "noise-dd-01": (10.2178, 103.9582),
}
USERS = {"duty": "ops", "police": "police"}
PREFERRED_PORT = 8080


def api_port() -> int:
    """8080, easy to type, unless something else holds it."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", PREFERRED_PORT))
            return PREFERRED_PORT
        except OSError:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port


def bundle(workdir: Path, device: str, site: str, kind: str, name: str) -> Path:
    lat, lon = PLACES[device]
    path = workdir / f"{device}.registration.yaml"
    path.write_text(
        f"device: {device}\nsite: {site}\nkind: {kind}\nname: {json.dumps(name)}\n"
        f"location: {{lat: {lat}, lon: {lon}}}\n",
        encoding="utf-8",
    )
    return path


async def add_users(config: Path) -> dict[str, str]:
    """Each demo user and its password, made for this run only."""
    passwords = {}
    for name, role in USERS.items():
        await run("collector", "users", "add", name, "--role", role, "-c", str(config))
        password = secrets.token_urlsafe(9)
        await run("collector", "users", "password", name, "--stdin", "-c", str(config),
                  stdin=password)  # fmt: skip
        passwords[name] = password
    return passwords


async def register_stations(config: Path, bundles: list[Path]) -> None:
    for path in bundles:
        await run("collector", "devices", "import", "-c", str(config), str(path))


def wall_snapshot(port: int, name: str, password: str) -> dict[str, Any]:
    """What a signed-in browser's wall is sent first: sign in, open the stream, read the
    snapshot event."""
    form = urllib.parse.urlencode({"name": name, "password": password}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    answer = connection.getresponse()
    answer.read()
    cookie = (answer.headers["Set-Cookie"] or "").split(";")[0]
    connection.request("GET", "/wall/stream", headers={"Cookie": cookie})
    stream = connection.getresponse()
    event = ""
    for raw in stream:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:") and event == "snapshot":
            connection.close()
            found: dict[str, Any] = json.loads(line.partition(":")[2])
            return found
    connection.close()
    raise RuntimeError("the wall's stream ended before its snapshot")
