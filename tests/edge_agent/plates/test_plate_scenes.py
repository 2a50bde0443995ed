"""The scene generator's styled streets: reproducible, and a held-out style that is held out."""

import random

import numpy as np

from testbed.plate_scenes import (
    HELD_OUT,
    TRAINING,
    Condition,
    Layout,
    make_scene,
    make_street,
    random_plates,
)


def test_a_seed_gives_the_same_street():
    first = make_street(
        random.Random(7), TRAINING, Condition.NIGHT, random_plates(random.Random(7), 3)
    )
    again = make_street(
        random.Random(7), TRAINING, Condition.NIGHT, random_plates(random.Random(7), 3)
    )
    assert np.array_equal(first.image, again.image)
    assert [p.plate for p in first.plates] == [p.plate for p in again.plates]
    assert len(first.plates) == 3


def test_the_held_out_style_shares_nothing_with_training():
    assert not set(HELD_OUT.fonts) & set(TRAINING.fonts)
    assert not set(HELD_OUT.backdrops) & set(TRAINING.backdrops)
    assert not set(HELD_OUT.signs) & set(TRAINING.signs)
    assert not set(HELD_OUT.sign_fonts) & set(TRAINING.sign_fonts)


def test_plates_lie_inside_the_frame_tilted_at_most_twenty_degrees():
    for seed in range(4):
        street = make_street(
            random.Random(seed), HELD_OUT, Condition.ANGLE, random_plates(random.Random(seed), 3)
        )
        for placed in street.plates:
            top_left, top_right = placed.corners[0], placed.corners[1]
            dx, dy = top_right - top_left
            assert abs(np.degrees(np.arctan2(dy, dx))) < 25
            assert (placed.corners >= -1).all()
            assert (placed.corners[:, 0] <= 1281).all()
            assert (placed.corners[:, 1] <= 721).all()


def test_a_styled_scene_keeps_the_scene_interface():
    scene = make_scene(random.Random(3), Layout.MOTORBIKE, Condition.BLUR, style=HELD_OUT)
    assert scene.image.shape == (720, 1280, 3)
    assert scene.layout is Layout.MOTORBIKE
    assert scene.box[2] > 0


def test_a_fixed_tilt_rolls_the_plate_of_the_same_street():
    rolled = {
        tilt: make_scene(
            random.Random(9), Layout.CAR_ONE_ROW, Condition.DAY, style=HELD_OUT, tilt=tilt
        )
        for tilt in (5.0, 20.0)
    }
    assert rolled[5.0].plate == rolled[20.0].plate
    for tilt, scene in rolled.items():
        (dx, dy) = scene.corners[1] - scene.corners[0]
        assert abs(np.degrees(np.arctan2(dy, dx)) - tilt) < 3
    centres = [scene.corners.mean(axis=0) for scene in rolled.values()]
    assert np.abs(centres[0] - centres[1]).max() < 1
