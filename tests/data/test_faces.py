"""cfnsr.data.faces: boxes from extents, crops (default and the public code's squash-first), detector fallback."""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import SKIN, draw_face

from cfnsr.data.faces import Box, box_from_extents, center_box, crop_faces, detect_extents, detect_face


def test_square_box_with_margin_around_the_extents():
    box = box_from_extents(np.array([600, 200, 700, 400]), 1280, 720, margin=0.2, square=True)
    assert box.width == box.height == 280  # 200 tall * (1 + 2 * 0.2)
    assert (box.left + box.right) / 2 == 650 and (box.top + box.bottom) / 2 == 300


def test_tight_box_with_zero_margin():
    box = box_from_extents(np.array([600.2, 200.5, 700, 399.5]), 1280, 720, margin=0.0, square=False)
    assert box == Box(600, 200, 700, 400)


def test_box_is_moved_inside_the_frame_and_clipped_only_when_too_big():
    box = box_from_extents(np.array([0, 0, 100, 100]), 1280, 720, margin=0.2, square=True)
    assert box == Box(0, 0, 140, 140)  # shifted right/down, still square
    box = box_from_extents(np.array([1200, 650, 1280, 720]), 1280, 720, margin=0.2, square=True)
    assert box.right == 1280 and box.bottom == 720 and box.width == box.height
    huge = box_from_extents(np.array([100, 0, 1100, 720]), 1280, 720, margin=0.5, square=True)
    assert huge.height == 720 and huge.width == 1280


def test_center_box():
    assert center_box(1280, 720) == Box(280, 0, 1000, 720)


def _face_frames(t: int = 3, w: int = 640, h: int = 360) -> tuple[np.ndarray, np.ndarray]:
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[:] = (40, 90, 200)
    extents = []
    for k in range(t):
        cx, cy, ry = 420 + 5 * k, 150, 90
        draw_face(frames[k], cx, cy, ry)
        extents.append([cx - 0.75 * ry, cy - ry, cx + 0.75 * ry, cy + ry])
    return frames, np.array(extents, np.float32)


def test_crop_faces_centres_the_face():
    frames, extents = _face_frames()
    crops = crop_faces(frames, extents, size=64, margin=0.2)
    assert crops.shape == (3, 64, 64, 3) and crops.dtype == np.uint8
    centre = crops[:, 24:40, 24:40].reshape(-1, 3).astype(int)
    assert np.mean(np.abs(centre - SKIN).sum(1) < 40) > 0.5
    corner = crops[:, :4, :4].reshape(-1, 3).astype(int)
    assert np.all(np.abs(corner - (40, 90, 200)).sum(1) < 20)  # the margin shows background


def test_squash_before_crop_and_center_fallback_shapes():
    frames, extents = _face_frames()
    squashed = crop_faces(frames, extents, size=48, margin=0.0, squash_before_crop=True)
    assert squashed.shape == (3, 48, 48, 3)
    centre = squashed[:, 20:28, 20:28].reshape(-1, 3).astype(int)
    assert np.mean(np.abs(centre - SKIN).sum(1) < 40) > 0.5
    assert crop_faces(frames, None, size=32, margin=0.2).shape == (3, 32, 32, 3)
    assert crop_faces(frames, None, size=32, margin=0.2, squash_before_crop=True).shape == (3, 32, 32, 3)


@pytest.mark.parametrize("detector", ["blazeface"])
def test_detector_finds_the_drawn_face_and_nothing_in_a_blank_frame(detector):
    frames, extents = _face_frames(1, 1280, 720)
    found = detect_face(frames[0], detector)
    assert found is not None
    fx, fy = (found[0] + found[2]) / 2, (found[1] + found[3]) / 2
    assert abs(fx - 420) < 40 and abs(fy - 150) < 50
    assert detect_face(np.full((360, 640, 3), 128, np.uint8), detector) is None


def test_unknown_detector_is_named():
    for gone in ("dlib", "haar"):
        with pytest.raises(ValueError, match=f"unknown face detector '{gone}'"):
            detect_face(np.zeros((8, 8, 3), np.uint8), gone)


def test_detect_extents_fills_misses_from_the_nearest_hit():
    frames, _ = _face_frames(3)
    frames[0] = 128  # no face in the first frame
    ext = detect_extents(frames)
    assert ext is not None and ext.shape == (3, 4)
    np.testing.assert_array_equal(ext[0], ext[1])
    assert detect_extents(np.full((2, 90, 160, 3), 128, np.uint8)) is None


@pytest.mark.parametrize("size", [32, 224])
def test_crop_from_small_frames_upscales(size):
    frames = np.zeros((1, 90, 160, 3), np.uint8)
    frames[0, 20:70, 50:90] = SKIN
    crops = crop_faces(frames, np.array([[50, 20, 90, 70]], np.float32), size=size, margin=0.0)
    assert crops.shape == (1, size, size, 3)
    assert np.all(crops[0, size // 2, size // 2] == SKIN)
