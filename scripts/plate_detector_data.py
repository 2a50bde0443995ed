"""Training data for the plate detector: generated streets and their augmentation.

Scenes come from `testbed.plate_scenes` in its TRAINING style (never HELD_OUT, which the
evaluation uses), plus plain scenes and plate-less sign-cluttered streets, generated once
at the detector's scale (half of 1280x720). Every draw then crops, scales, rotates, warps
and degrades one of them (night, glare, blur, noise, JPEG), so the network sees many
more views than there are scenes. Everything follows from a seed.
"""

import random
from dataclasses import dataclass
from multiprocessing import Pool

import cv2
import numpy as np
from numpy.typing import NDArray
from plate_detector_net import encode

from iotwire.plate_formats import Colour
from testbed.plate_scenes import (
    TRAINING,
    Condition,
    Layout,
    make_scene,
    make_street,
    random_plates,
)

Image = NDArray[np.uint8]
SCALE = 0.5  # the detector sees 1280x720 frames as 640x360
CROP = 256


@dataclass(frozen=True)
class Sample:
    image: Image
    plates: list[NDArray[np.float32]]


def generate(seed: int) -> Sample:
    """One training scene at the detector's scale, drawn from `seed`."""
    rng = random.Random(seed)  # noqa: S311 - generated scenes, the same for a seed
    condition = rng.choice(tuple(Condition))
    kind = rng.random()
    if kind < 0.15:  # the plain scenes the reader's tests use
        layout, colour = rng.choice(tuple(Layout)), rng.choice(tuple(Colour))
        scene = make_scene(rng, layout, condition, colour)
        image, corners = scene.image, [scene.corners]
    else:
        count = 0 if kind < 0.32 else rng.randint(1, 3)
        street = make_street(rng, TRAINING, condition, random_plates(rng, count))
        image, corners = street.image, [p.corners for p in street.plates]
    small = cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
    return Sample(small, [c * SCALE for c in corners])


def generate_all(seed: int, count: int, processes: int = 2) -> list[Sample]:
    with Pool(processes) as pool:
        return pool.map(generate, range(seed, seed + count), chunksize=16)


def _warp(rng: random.Random, sample: Sample) -> tuple[Image, list[NDArray[np.float32]]]:
    """A CROP x CROP view: scaled, rotated and put in perspective around a plate most of
    the time, anywhere otherwise."""
    h, w = sample.image.shape[:2]
    if sample.plates and rng.random() < 0.75:
        centre = rng.choice(sample.plates).mean(axis=0)
        shift = np.array([rng.uniform(-CROP / 3, CROP / 3), rng.uniform(-CROP / 3, CROP / 3)])
        focus = centre + shift
    else:
        focus = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    scale = float(np.exp(rng.uniform(np.log(0.65), np.log(1.5))))
    affine = cv2.getRotationMatrix2D(
        (float(focus[0]), float(focus[1])), rng.uniform(-10, 10), scale
    )
    affine[:, 2] += [CROP / 2 - focus[0], CROP / 2 - focus[1]]
    square = np.array([[0, 0], [CROP, 0], [CROP, CROP], [0, CROP]], np.float32)
    moved = square + np.array(
        [[rng.uniform(-0.07, 0.07) * CROP for _ in range(2)] for _ in range(4)], np.float32
    )
    warp = cv2.getPerspectiveTransform(square, moved) @ np.vstack([affine, [0, 0, 1]])
    fill = (rng.randint(0, 255),) * 3
    image = cv2.warpPerspective(sample.image, warp, (CROP, CROP), borderValue=fill)
    plates = [
        cv2.perspectiveTransform(c[None].astype(np.float64), warp)[0].astype(np.float32)
        for c in sample.plates
    ]
    return image, plates


def _degrade(rng: random.Random, image: Image) -> Image:
    """Light, weather and camera: contrast, colour cast, night, glare, blur, noise, JPEG."""
    np_rng = np.random.default_rng(rng.randint(0, 2**31))
    out = image.astype(np.float32) * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)
    out *= np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
    if rng.random() < 0.2:  # night, lit by headlights and street lamps
        out = out * rng.uniform(0.2, 0.45) + np.array([10, 3, 0], np.float32)
        glow = np.zeros(image.shape[:2], np.float32)
        for _ in range(rng.randint(1, 3)):
            centre = (rng.randint(0, CROP), rng.randint(0, CROP))
            cv2.circle(glow, centre, rng.randint(30, 120), 1.0, -1)
        out *= 1 + rng.uniform(0.5, 1.5) * cv2.GaussianBlur(glow, (0, 0), 30)[..., None]
    if rng.random() < 0.2:  # glare
        glare = np.zeros(image.shape[:2], np.float32)
        centre = (rng.randint(0, CROP), rng.randint(0, CROP))
        axes = (rng.randint(8, 40), rng.randint(4, 16))
        cv2.ellipse(glare, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        out += rng.uniform(60, 140) * cv2.GaussianBlur(glare, (0, 0), rng.uniform(2, 6))[..., None]
    if rng.random() < 0.3:
        if rng.random() < 0.5:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.8))
        else:
            size = rng.choice((3, 5, 7))
            kernel = np.zeros((size, size), np.float32)
            kernel[size // 2, :] = 1 / size
            rotation = cv2.getRotationMatrix2D(
                (size / 2 - 0.5, size / 2 - 0.5), rng.uniform(0, 180), 1
            )
            out = cv2.filter2D(out, -1, cv2.warpAffine(kernel, rotation, (size, size)))
    if rng.random() < 0.4:
        out += np_rng.normal(0, rng.uniform(2, 12), out.shape)
    image = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(25, 90)])
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return image


def draw(
    rng: random.Random, sample: Sample
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """One augmented view of `sample` as the network's input (3, CROP, CROP) in [0, 1],
    RGB, with its heatmap, corner and weight targets."""
    image, plates = _warp(rng, sample)
    image = _degrade(rng, image)
    tensor = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1).astype(np.float32) / 255
    heat, offsets, weight = encode(plates, CROP, CROP)
    return tensor, heat, offsets, weight
