#!/usr/bin/env python3
"""Reading tilted and perspective-skewed plates, straightened and not, on the same scenes.

    .venv/bin/python bench/bench_plate_rectify.py [--per-layout 10] [--empty 20] [--seed 4100]

Scenes come from the generator's HELD_OUT style (letterings, backdrops and signs the plate
detector's training never drew), one plate each, every layout in turn, lit by day, at
night or blurred in turn. Each tilt group draws the same streets with the plate rolled by
0, 5, 10, 15 or 20 degrees; the perspective group draws them seen at an angle
(`Condition.ANGLE`) and rolled by up to 20 degrees. Every scene is read four ways: the
text-detector path (no plate detector) and the shipped detector's path (`detector:
builtin`), each with straightening off (the baseline, today's reader) and on. Prints
exact-read rates per group with the ratio after/before and how many other plates (a
misread, or a sign) were read in the same scenes, the plates read on plate-less
HELD_OUT streets full of signs both ways (straightening must not invent plates), the read
time per frame both ways, and the time straightening adds per plate (`rectify` alone).

Run: .venv/bin/python bench/bench_plate_rectify.py
"""

import argparse
import random
import statistics
import time
from collections import defaultdict

from edge_agent.plates.detector import PlateDetector
from edge_agent.plates.ocr import Runtime
from edge_agent.plates.reader import OcrOptions, PlateReader
from edge_agent.plates.rectify import rectify
from iotwire.plate_formats import Colour
from testbed.plate_scenes import HELD_OUT, Condition, Layout, Scene, make_scene, make_street

TILTS = (0.0, 5.0, 10.0, 15.0, 20.0)
LIGHTING = (Condition.DAY, Condition.NIGHT, Condition.BLUR)
PERSPECTIVE = "perspective"


def scenes(seed: int, per_layout: int) -> dict[str, list[Scene]]:
    """The scenes of each group: the same streets at every tilt."""
    groups: dict[str, list[Scene]] = defaultdict(list)
    for layout in Layout:
        for i in range(per_layout):
            street_seed = f"{seed}-{layout}-{i}"
            colour = list(Colour)[i % len(Colour)]
            for tilt in TILTS:
                condition = LIGHTING[i % len(LIGHTING)]
                scene = make_scene(
                    random.Random(street_seed), layout, condition, colour, style=HELD_OUT, tilt=tilt
                )
                groups[f"tilt {tilt:>2.0f} deg"].append(scene)
            angled = make_scene(
                random.Random(street_seed), layout, Condition.ANGLE, colour, style=HELD_OUT
            )
            groups[PERSPECTIVE].append(angled)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-layout", type=int, default=10)
    parser.add_argument("--empty", type=int, default=20)
    parser.add_argument("--seed", type=int, default=4100)
    args = parser.parse_args()
    runtime = Runtime(threads=2)
    detector = PlateDetector(runtime)
    readers = {
        (path, straighten): PlateReader(OcrOptions(runtime, rectify=straighten), finder)
        for path, finder in (("text", None), ("builtin", detector))
        for straighten in (False, True)
    }
    groups = scenes(args.seed, args.per_layout)
    exact: dict[tuple[str, str, bool], list[bool]] = defaultdict(list)
    wrong: dict[tuple[str, str, bool], int] = defaultdict(int)
    seconds: dict[tuple[str, bool], list[float]] = defaultdict(list)
    rectify_ms: list[float] = []
    for group, members in groups.items():
        for scene in members:
            for (path, straighten), reader in readers.items():
                began = time.perf_counter()
                reads = [c.plate.canonical for c in reader.read(scene.image)]
                seconds[path, straighten].append(time.perf_counter() - began)
                exact[group, path, straighten].append(scene.plate.canonical in reads)
                wrong[group, path, straighten] += sum(r != scene.plate.canonical for r in reads)
            began = time.perf_counter()
            rectify(scene.image, scene.box)
            rectify_ms.append(1000 * (time.perf_counter() - began))
    count = len(next(iter(groups.values())))
    print(f"exact reads, {count} HELD_OUT scenes per group ({args.per_layout} per layout)")
    print(
        f"{'group':<16} {'path':<8} {'before':>7} {'after':>7} {'after/before':>13} "
        f"{'other plates read before/after':>31}"
    )
    for group in groups:
        for path in ("text", "builtin"):
            before = sum(exact[group, path, False]) / count
            after = sum(exact[group, path, True]) / count
            ratio = f"{after / before:.2f}" if before else "-"
            others = f"{wrong[group, path, False]}/{wrong[group, path, True]}"
            print(f"{group:<16} {path:<8} {before:>7.0%} {after:>7.0%} {ratio:>13} {others:>31}")
    empty = [
        make_street(random.Random(f"{args.seed}-empty-{i}"), HELD_OUT, LIGHTING[i % 3], ())
        for i in range(args.empty)
    ]
    print(f"plates read on {args.empty} plate-less HELD_OUT streets")
    for path in ("text", "builtin"):
        false = {
            straighten: sum(len(readers[path, straighten].read(s.image)) for s in empty)
            for straighten in (False, True)
        }
        print(f"{path:<8} before {false[False]:>3}  after {false[True]:>3}")
    print("read time per 1280x720 frame, median (2 threads)")
    for path in ("text", "builtin"):
        before = 1000 * statistics.median(seconds[path, False])
        after = 1000 * statistics.median(seconds[path, True])
        print(
            f"{path:<8} before {before:6.1f} ms  after {after:6.1f} ms  "
            f"after/before {after / before:.2f}"
        )
    print(
        f"rectify alone per plate: median {statistics.median(rectify_ms):.1f} ms, "
        f"p95 {sorted(rectify_ms)[int(0.95 * len(rectify_ms))]:.1f} ms"
    )


if __name__ == "__main__":
    main()
