"""How well the shipped plate detector finds plates, on scenes it was never trained on.

    .venv/bin/python bench/bench_plate_detector.py [--scenes 200] [--empty 50] [--seed 1800]

Scenes come from the generator's HELD_OUT style (letterings, backdrops and sign kinds the
training script never draws), one to three vehicles each, in every lighting condition. A
detection is a true plate when its box overlaps a real plate's by IoU 0.5 or more.
Prints precision and recall overall and per layout, the false plates on plate-less
streets full of signs with phone numbers, prices and addresses, and the time per
1280x720 frame on 2 threads.
"""

import argparse
import random
import statistics
import time

import cv2
import numpy as np

from edge_agent.plates.detector import PlateDetector
from edge_agent.plates.ocr import Runtime
from testbed.plate_scenes import HELD_OUT, Condition, Layout, Street, make_street, random_plates

MIN_IOU = 0.5


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def held_out_streets(seed: int, count: int, plates: bool) -> list[Street]:
    """`count` HELD_OUT streets, with one to three plates each or with none."""
    streets = []
    for i in range(count):
        rng = random.Random(seed + i)
        condition = list(Condition)[i % len(Condition)]
        wanted = random_plates(rng, rng.randint(1, 3) if plates else 0)
        streets.append(make_street(rng, HELD_OUT, condition, wanted))
    return streets


def score(detector: PlateDetector, streets: list[Street]) -> dict[str, float]:
    """Precision and recall over `streets`, recall also per layout."""
    found, missed, false = dict.fromkeys(Layout, 0), dict.fromkeys(Layout, 0), 0
    for street in streets:
        detections = [d.box for d in detector.detect(street.image)]
        for placed in street.plates:
            x, y, w, h = cv2.boundingRect(placed.corners.astype(np.int32))
            overlaps = [iou((x, y, w, h), box) for box in detections]
            best = int(np.argmax(overlaps)) if overlaps else -1
            if best >= 0 and overlaps[best] >= MIN_IOU:
                found[placed.layout] += 1
                detections.pop(best)
            else:
                missed[placed.layout] += 1
        false += len(detections)
    hits = sum(found.values())
    figures = {
        "precision": hits / max(1, hits + false),
        "recall": hits / max(1, hits + sum(missed.values())),
    }
    for layout in Layout:
        figures[f"recall {layout}"] = found[layout] / max(1, found[layout] + missed[layout])
    return figures


def false_plates(detector: PlateDetector, streets: list[Street]) -> int:
    return sum(len(detector.detect(street.image)) for street in streets)


def milliseconds_per_frame(detector: PlateDetector, streets: list[Street]) -> float:
    detector.detect(streets[0].image)
    times = []
    for street in streets:
        started = time.perf_counter()
        detector.detect(street.image)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--empty", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1800)
    parser.add_argument("--min-score", type=float, default=0.4)
    args = parser.parse_args()
    detector = PlateDetector(Runtime(threads=2), min_score=args.min_score)
    streets = held_out_streets(args.seed, args.scenes, plates=True)
    empty = held_out_streets(args.seed + 100_000, args.empty, plates=False)
    for name, value in score(detector, streets).items():
        print(f"{name:<26} {value:6.1%}")
    print(f"{'false plates, plate-less':<26} {false_plates(detector, empty):6d} in {args.empty}")
    print(f"{'ms per 1280x720 frame':<26} {milliseconds_per_frame(detector, empty):6.1f}")


if __name__ == "__main__":
    main()
