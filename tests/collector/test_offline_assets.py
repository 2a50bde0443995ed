"""The wall's vendored assets (collector/wall/static/vendor/, scripts/vendor_web_assets.py)
are the files their manifest records, the coastline is Phu Quoc's, and /docs and /redoc
load nothing from outside the collector."""

import asyncio
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from collector.api.offline_docs import (
    STATIC_NAME,
    STATIC_PATH,
    add_offline_docs,
    static_files,
)

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "collector" / "wall" / "static" / "vendor"
MANIFEST = json.loads((VENDOR / "MANIFEST.json").read_text())
DUONG_DONG = (103.96, 10.22)
ATTRIBUTES = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def _ring_contains(ring: list[list[float]], point: tuple[float, float]) -> bool:
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@dataclass
class Reply:
    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class Client:
    """GET on the app in this process, spoken in ASGI: starlette's TestClient needs httpx2,
    which nothing else here uses."""

    def __init__(self, app: FastAPI, root_path: str = "") -> None:
        self.app = app
        self.root_path = root_path

    def get(self, url: str) -> Reply:
        return asyncio.run(self._get(url))

    async def _get(self, url: str) -> Reply:
        path, _, query = url.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": self.root_path,
            "headers": [(b"host", b"collector.test")],
            "client": ("127.0.0.1", 50000),
            "server": ("collector.test", 80),
        }
        sent = False
        status = 0
        body = bytearray()

        async def receive() -> dict[str, object]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        return Reply(status, bytes(body))


def _app(**kwargs: object) -> FastAPI:
    app = FastAPI(title="Phu Quoc telemetry", docs_url=None, redoc_url=None, **kwargs)
    add_offline_docs(app)
    app.mount(STATIC_PATH, static_files(), name=STATIC_NAME)
    return app


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_each_vendored_file_is_the_one_the_manifest_records(name):
    entry = MANIFEST["files"][name]
    path = VENDOR / name
    assert path.is_file(), f"{name} is in MANIFEST.json but not in {VENDOR}"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
    assert entry["package"]
    assert entry["version"]


def test_the_vendor_folder_holds_nothing_the_manifest_does_not_name():
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()}
    assert present - set(MANIFEST["files"]) == {"MANIFEST.json", "ATTRIBUTION.md"}


def test_the_manifest_names_the_versions_the_lockfile_pins():
    lock = json.loads((REPO / "web" / "package-lock.json").read_text())["packages"]
    for name, entry in MANIFEST["files"].items():
        assert lock[f"node_modules/{entry['package']}"]["version"] == entry["version"], name


def test_the_attribution_credits_openstreetmap():
    text = (VENDOR / "ATTRIBUTION.md").read_text()
    assert "Coastline © OpenStreetMap contributors, ODbL" in text
    for entry in MANIFEST["files"].values():
        assert f"| {entry['package']} | {entry['version']} |" in text


def test_the_coastline_is_a_feature_collection_holding_duong_dong():
    coast = json.loads((VENDOR / "phu-quoc-coast.geojson").read_text())
    assert coast["type"] == "FeatureCollection"
    assert coast["features"]
    for feature in coast["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Polygon"
        for ring in feature["geometry"]["coordinates"]:
            assert len(ring) >= 4
            assert ring[0] == ring[-1]
            for lon, lat in ring:
                assert 103.80 <= lon <= 104.20
                assert 9.85 <= lat <= 10.50
    main, *islets = coast["features"]
    outer, *holes = main["geometry"]["coordinates"]
    assert _ring_contains(outer, DUONG_DONG)
    assert not any(_ring_contains(hole, DUONG_DONG) for hole in holes)
    assert islets, "the islands around Phu Quoc (An Thoi) are in the box too"
    assert len((VENDOR / "phu-quoc-coast.geojson").read_bytes()) < 300_000


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_only_local_assets(page):
    client = Client(_app())
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html
    assert "https://" not in html
    references = ATTRIBUTES.findall(html)
    assert references, "the page loads its script"
    for reference in references:
        assert reference.startswith("/"), reference
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.body
    # The document the page reads is local too.
    assert "/openapi.json" in html
    assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_asks_no_online_validator():
    html = Client(_app()).get("/docs").text
    assert '"validatorUrl": null' in html


def test_the_oauth2_redirect_page_is_served_as_fastapi_would():
    assert Client(_app()).get("/docs/oauth2-redirect").status_code == 200


def test_assets_follow_the_apps_root_path():
    client = Client(_app(), root_path="/collector")
    html = client.get("/docs").text
    assert 'src="/collector/wall/static/vendor/swagger-ui-bundle.js"' in html


def test_no_documentation_without_an_openapi_document():
    client = Client(_app(openapi_url=None))
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
