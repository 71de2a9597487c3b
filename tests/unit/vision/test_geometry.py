from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from inferpack.vision.geometry import Placement, Transform, place


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ((640, 360), (320, 320), Placement(320, 180, 0, 70)),
        ((300, 500), (320, 320), Placement(192, 320, 64, 0)),
        ((100, 99), (320, 320), Placement(320, 317, 0, 1)),  # odd padding: 1 on top, 2 below
        ((4, 3), (6, 100), Placement(6, 4, 0, 48)),  # 4.5 rounds half to even, as Ultralytics does
        ((15, 4096), (32, 32), Placement(1, 32, 15, 0)),  # never below 1 px
        ((320, 320), (320, 320), Placement(320, 320, 0, 0)),
    ],
)
def test_letterbox_placement(src: tuple[int, int], dst: tuple[int, int], expected: Placement) -> None:
    assert place(*src, *dst, "letterbox") == expected


def test_stretch_fills_the_input() -> None:
    assert place(640, 360, 224, 224, "stretch") == Placement(224, 224, 0, 0)


@pytest.mark.parametrize(
    ("decoded", "original", "mode"),
    [
        ((640, 360), (640, 360), "letterbox"),
        ((300, 500), (300, 500), "letterbox"),
        ((500, 375), (4000, 3000), "letterbox"),  # a 1/8 reduced decode
        ((640, 360), (640, 360), "stretch"),
        ((126, 125), (1001, 999), "stretch"),
    ],
)
def test_transform_exactly_inverts_the_placement(
    decoded: tuple[int, int], original: tuple[int, int], mode: str
) -> None:
    placement = place(*decoded, 320, 320, mode)  # type: ignore[arg-type]
    transform = Transform.of(placement, *original)
    box = np.array([[10.0, 20.0, original[0] - 30.0, original[1] - 5.0]])
    # forward: original -> model input, the way the pixels went
    forward = box.copy()
    forward[:, 0::2] = box[:, 0::2] * placement.width / original[0] + placement.left
    forward[:, 1::2] = box[:, 1::2] * placement.height / original[1] + placement.top
    np.testing.assert_allclose(transform.to_original(forward), box, rtol=0, atol=1e-9)


def test_boxes_are_clipped_to_the_original_image() -> None:
    transform = Transform.of(place(640, 360, 320, 320, "letterbox"), 640, 360)
    boxes = np.array([[-50.0, 0.0, 400.0, 70.0], [100.0, 250.0, 200.0, 320.0]])
    np.testing.assert_allclose(transform.to_original(boxes), [[0, 0, 640, 0], [200, 360, 400, 360]])


@settings(max_examples=300, deadline=1000)
@given(
    src=st.tuples(st.integers(1, 4096), st.integers(1, 4096)),
    dst=st.tuples(st.integers(1, 1024), st.integers(1, 1024)),
    mode=st.sampled_from(["stretch", "letterbox"]),
    boxes=arrays(np.float32, (5, 4), elements=st.floats(allow_nan=False, width=32)),
)
def test_mapped_boxes_always_lie_inside_the_image(
    src: tuple[int, int], dst: tuple[int, int], mode: str, boxes: np.ndarray
) -> None:
    placement = place(*src, *dst, mode)  # type: ignore[arg-type]
    assert 1 <= placement.width <= dst[0] and 1 <= placement.height <= dst[1]
    assert placement.left >= 0 and placement.top >= 0
    mapped = Transform.of(placement, *src).to_original(boxes)
    assert np.all((mapped[:, 0::2] >= 0) & (mapped[:, 0::2] <= src[0]))
    assert np.all((mapped[:, 1::2] >= 0) & (mapped[:, 1::2] <= src[1]))
