from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from inferpack.bundle import InputSpec
from inferpack.vision.decode import DecodedImage, decode_image
from inferpack.vision.geometry import place
from inferpack.vision.preprocess import Preprocessor

from ._images import encode, photo

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def spec(width: int = 320, height: int = 320, **fields: object) -> InputSpec:
    return InputSpec(name=None, width=width, height=height, **fields)  # type: ignore[arg-type]


def image(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage(pixels, pixels.shape[1], pixels.shape[0], "png")


def reference(pixels: np.ndarray, s: InputSpec) -> np.ndarray:
    """The model.json rules written out plainly, in float64."""
    h, w = pixels.shape[:2]
    p = place(w, h, s.width, s.height, s.resize)
    shrink = max(w / p.width, h / p.height)
    resized = cv2.resize(
        pixels, (p.width, p.height), interpolation=cv2.INTER_AREA if shrink >= 2 else cv2.INTER_LINEAR
    )
    canvas = np.full((s.height, s.width, 3), s.pad_value, np.uint8)
    canvas[p.top : p.top + p.height, p.left : p.left + p.width] = resized
    if s.color == "RGB":
        canvas = canvas[..., ::-1]
    x = (canvas.astype(np.float64) * s.scale - np.array(s.mean)) / np.array(s.std)
    return x.transpose(2, 0, 1) if s.layout == "NCHW" else x


@pytest.mark.parametrize(
    ("layout", "color", "resize", "size"),
    list(
        itertools.product(
            ["NCHW", "NHWC"], ["RGB", "BGR"], ["stretch", "letterbox"], [(640, 480), (300, 500), (100, 60)]
        )
    ),
)
def test_matches_the_plain_reference(layout: str, color: str, resize: str, size: tuple[int, int]) -> None:
    s = spec(320, 256, layout=layout, color=color, resize=resize, pad_value=100, **IMAGENET)
    pixels = photo(*size)
    sample, _ = Preprocessor(s)(image(pixels))
    assert sample.dtype == np.float32 and sample.shape == s.tensor_shape(1)[1:]
    np.testing.assert_allclose(sample, reference(pixels, s), rtol=0, atol=1e-5)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_colour_order_scale_mean_std_and_padding_values(layout: str) -> None:
    s = spec(
        64, 64, layout=layout, resize="letterbox", pad_value=51, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)
    )
    sample, _ = Preprocessor(s)(image(np.full((16, 64, 3), (10, 20, 30), np.uint8)))  # BGR
    planes = sample if layout == "NCHW" else sample.transpose(2, 0, 1)
    for channel, (value, std) in enumerate(zip((30, 20, 10), (0.25, 0.5, 1.0), strict=True)):  # RGB
        np.testing.assert_allclose(planes[channel, 24:40], (value / 255 - 0.5) / std, rtol=1e-6)
        np.testing.assert_allclose(planes[channel, :24], (51 / 255 - 0.5) / std, rtol=1e-6)
        np.testing.assert_allclose(planes[channel, 40:], (51 / 255 - 0.5) / std, rtol=1e-6)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_writes_into_a_batch_buffer_without_a_copy(layout: str) -> None:
    s = spec(32, 32, layout=layout)
    batch = np.zeros(s.tensor_shape(3), np.float32)
    sample, _ = Preprocessor(s)(image(photo(64, 48)), out=batch[1])
    assert np.shares_memory(sample, batch) and sample.base is batch
    assert not batch[0].any() and not batch[2].any() and batch[1].any()


@pytest.mark.parametrize(
    "out",
    [
        np.zeros((3, 32, 31), np.float32),
        np.zeros((3, 32, 32), np.float64),
        np.zeros((3, 32, 64), np.float32)[:, :, ::2],
    ],
    ids=["shape", "dtype", "not-contiguous"],
)
def test_a_wrong_out_buffer_is_a_programming_error(out: np.ndarray) -> None:
    with pytest.raises(ValueError, match="C-contiguous float32"):
        Preprocessor(spec(32, 32))(image(photo(64, 48)), out=out)


def test_shrinking_2x_or_more_averages_instead_of_aliasing() -> None:
    stripes = np.zeros((480, 640, 3), np.uint8)
    stripes[:, ::3] = 255  # period 3: far above the Nyquist limit of a 2.9x shrink
    sample, _ = Preprocessor(spec(220, 165, scale=1.0))(image(stripes))
    assert sample.std() < 5  # INTER_LINEAR: ~60 (moire)


def _rectangle_edges(plane: np.ndarray, background: float, foreground: float) -> tuple[float, ...]:
    """Sub-pixel x1, y1, x2, y2 of a bright rectangle, from its coverage profiles."""
    cover = np.clip((plane - background) / (foreground - background), 0, 1)
    edges = []
    for profile in (cover.max(axis=0), cover.max(axis=1)):
        # a coverage profile integrates to the extent; its centroid is the centre
        extent = profile.sum()
        centre = (profile * (np.arange(profile.size) + 0.5)).sum() / extent
        edges.append((centre - extent / 2, centre + extent / 2))
    (x1, x2), (y1, y2) = edges
    return x1, y1, x2, y2


@pytest.mark.parametrize(
    ("size", "resize", "tolerance"),
    [
        ((4000, 3000), "letterbox", 2.0),
        ((4000, 3000), "stretch", 2.0),
        ((3000, 4000), "letterbox", 2.0),
        ((4001, 3003), "letterbox", 8.0),  # not a multiple of 8: < 1 reduced pixel of slack
        ((4007, 3005), "stretch", 8.0),
        ((640, 360), "letterbox", 1.0),
    ],
)
def test_boxes_round_trip_through_a_reduced_decode(
    size: tuple[int, int], resize: str, tolerance: float
) -> None:
    width, height = size
    drawn = (width // 4, height // 5, width * 3 // 5, height * 7 // 10)
    canvas = np.full((height, width, 3), 40, np.uint8)
    cv2.rectangle(canvas, drawn[:2], (drawn[2] - 1, drawn[3] - 1), (220, 220, 220), -1)
    s = spec(320, 320, resize=resize, scale=1.0, pad_value=40)  # padding reads as background
    decoded = decode_image(
        encode(canvas, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95), target_size=(320, 320), resize=s.resize
    )
    assert decoded.pixels.shape[1] < width or width < 1000  # the big ones really were reduced
    sample, transform = Preprocessor(s)(decoded)
    found = transform.to_original(np.array([_rectangle_edges(sample[0], 40, 220)]))[0]
    np.testing.assert_allclose(found, drawn, rtol=0, atol=tolerance)
