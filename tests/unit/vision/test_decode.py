from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferpack.errors import ImageDecodeFailed, InvalidInputSize
from inferpack.vision import decode as decode_module
from inferpack.vision.decode import decode_image, reduction_factor
from inferpack.vision.imageinfo import ImageHeader
from inferpack.vision.limits import ImageLimits

from ._images import (
    RED,
    bmp,
    encode,
    jpeg_bomb,
    marked,
    oriented,
    palette_png,
    photo,
    png,
    png_bomb,
    png_chunk,
    tiff_orientation,
    with_exif,
    with_scans,
)

IMAGE = marked(40, 30)


def imdecode(data: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
def test_decodes_each_format_to_contiguous_bgr(ext: str) -> None:
    data = encode(IMAGE, ext)
    image = decode_image(data)
    assert (image.width, image.height, image.format) == (40, 30, {".jpg": "jpeg"}.get(ext, ext[1:]))
    assert image.pixels.dtype == np.uint8 and image.pixels.shape == (30, 40, 3)
    assert image.pixels.flags.c_contiguous
    np.testing.assert_array_equal(image.pixels, imdecode(data))
    if ext != ".jpg":
        np.testing.assert_array_equal(image.pixels, IMAGE)


def test_grey_rgba_16_bit_and_palette_images_become_8_bit_bgr() -> None:
    grey = np.full((30, 40), 77, np.uint8)
    rgba = np.dstack([IMAGE, np.full((30, 40), 10, np.uint8)])  # alpha is dropped, not blended
    deep = IMAGE.astype(np.uint16) * 257  # 16-bit: v * 257 >> 8 == v
    indices = np.zeros((30, 40), np.uint8)
    indices[:, 20:] = 1
    cases = {
        "grey png": (encode(grey, ".png"), np.dstack([grey] * 3)),
        "grey jpeg": (encode(grey, ".jpg"), np.dstack([grey] * 3)),
        "grey bmp": (encode(grey, ".bmp"), np.dstack([grey] * 3)),
        "rgba png": (encode(rgba, ".png"), IMAGE),
        "16-bit png": (encode(deep, ".png"), IMAGE),
        "16-bit grey png": (encode(grey.astype(np.uint16) * 257, ".png"), np.dstack([grey] * 3)),
        "palette png": (
            palette_png(indices, [(255, 0, 0), (0, 0, 255)]),
            np.where(indices[..., None] == 0, (0, 0, 255), (255, 0, 0)).astype(np.uint8),
        ),
        "bmp core header": (bmp(IMAGE, header_size=12), IMAGE),
        "bmp v5 top-down": (bmp(IMAGE, header_size=124, top_down=True), IMAGE),
    }
    for name, (data, expected) in cases.items():
        pixels = decode_image(data).pixels
        assert pixels.dtype == np.uint8 and pixels.shape == (30, 40, 3), name
        assert np.abs(pixels.astype(int) - expected).max() <= 1, name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_is_applied_and_size_reported_as_displayed(orientation: int) -> None:
    plain = encode(IMAGE, ".jpg")
    image = decode_image(with_exif(plain, orientation))
    np.testing.assert_array_equal(image.pixels, oriented(imdecode(plain), orientation))
    assert (image.width, image.height) == ((30, 40) if orientation >= 5 else (40, 30))
    assert image.pixels.flags.c_contiguous


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_to_a_reduced_decode_too(orientation: int) -> None:
    plain = encode(marked(800, 600), ".jpg")
    image = decode_image(with_exif(plain, orientation), target_size=(100, 100))
    reduced = imdecode(plain, cv2.IMREAD_REDUCED_COLOR_4)
    np.testing.assert_array_equal(image.pixels, oriented(reduced, orientation))
    assert (image.width, image.height) == ((600, 800) if orientation >= 5 else (800, 600))


def test_png_exif_orientation_is_ignored_so_pixels_match_ihdr() -> None:
    rows = b"".join(b"\0" + row.tobytes() for row in IMAGE[..., ::-1])
    data = png(40, 30, 8, 2, rows, extra=png_chunk(b"eXIf", tiff_orientation(6)))
    assert imdecode(data).shape == (40, 30, 3)  # OpenCV alone would turn it
    image = decode_image(data)
    assert (image.width, image.height) == (40, 30)
    np.testing.assert_array_equal(image.pixels, IMAGE)


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [
        (15, 15, True),
        (14, 100, False),
        (100, 14, False),
        (4096, 15, True),
        (15, 4096, True),
        (4097, 15, False),
        (15, 4097, False),
    ],
)
def test_size_limits_at_the_exact_boundaries(width: int, height: int, ok: bool) -> None:
    data = encode(np.zeros((height, width, 3), np.uint8), ".png")
    if ok:
        assert decode_image(data).pixels.shape == (height, width, 3)
    else:
        with pytest.raises(InvalidInputSize, match=f"image is {width}x{height} px") as caught:
            decode_image(data)
        assert caught.value.code == 336004 and caught.value.http_status == 400


def test_size_limits_apply_to_the_displayed_size() -> None:
    data = with_exif(encode(np.zeros((14, 40, 3), np.uint8), ".jpg"), 6)
    with pytest.raises(InvalidInputSize, match="image is 14x40 px"):
        decode_image(data)


@pytest.mark.parametrize("bomb", [png_bomb, jpeg_bomb])
def test_a_decompression_bomb_is_refused_before_decoding(bomb: object) -> None:
    data = bomb(50_000, 50_000)  # type: ignore[operator]
    assert len(data) < 1000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InvalidInputSize, match="50000x50000") as caught:
            decode_image(data)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == 336004
    assert elapsed < 0.05 and peak < 1_000_000  # 50000^2 BGR would be 7.5 GB


def test_opencv_pixel_cap_is_set_before_cv2_loads() -> None:
    """The second line of defence: with limits raised past it, OpenCV itself refuses."""
    script = """
import inferpack.vision, cv2, numpy as np
from inferpack.errors import ImageDecodeFailed
from inferpack.vision.decode import decode_image
from inferpack.vision.limits import ImageLimits
_, data = cv2.imencode(".png", np.zeros((20, 4097, 3), np.uint8))
try:
    decode_image(data.tobytes(), ImageLimits(max_side=8192))
except ImageDecodeFailed as exc:
    print(exc.detail)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "CV_IO_MAX_IMAGE_WIDTH" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_files_fail_to_decode(ext: str, keep: float) -> None:
    data = encode(photo(200, 150), ext)
    with pytest.raises(ImageDecodeFailed):
        decode_image(data[: int(len(data) * keep)])


def test_a_jpeg_with_too_many_scans_is_refused_before_decoding() -> None:
    """Each scan is a pass over the whole image: 1000 of a 4096x4096 take ~20 s."""
    progressive = encode(IMAGE, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1)  # 10 scans
    assert decode_image(with_scans(progressive, 90)).pixels.shape == (30, 40, 3)
    with pytest.raises(ImageDecodeFailed, match="the JPEG has 101 scans; at most 100 are accepted"):
        decode_image(with_scans(progressive, 91))


def test_a_format_outside_the_limits_is_refused() -> None:
    with pytest.raises(ImageDecodeFailed, match="bmp images are not accepted"):
        decode_image(encode(IMAGE, ".bmp"), ImageLimits(formats=frozenset({"jpeg", "png"})))


def test_decoded_size_must_match_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "sniff", lambda data: ImageHeader("png", 41, 30))
    with pytest.raises(ImageDecodeFailed, match="decoded 40x30 px, but the png header declares 41x30"):
        decode_image(encode(IMAGE, ".png"))


def test_an_opencv_exception_becomes_image_decode_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(buf: np.ndarray, flags: int) -> np.ndarray:
        raise cv2.error("boom")

    monkeypatch.setattr(decode_module.cv2, "imdecode", fail)
    with pytest.raises(ImageDecodeFailed, match="could not be decoded"):
        decode_image(encode(IMAGE, ".png"))


@pytest.mark.parametrize(
    ("fmt", "size", "target", "resize", "factor"),
    [
        ("jpeg", (4000, 3000), (320, 320), "stretch", 8),
        ("jpeg", (4000, 3000), (224, 224), "letterbox", 8),
        ("jpeg", (640, 480), (224, 224), "stretch", 2),
        ("jpeg", (640, 480), (320, 320), "stretch", 1),
        ("jpeg", (640, 480), (320, 320), "letterbox", 2),  # fits as 320x240
        ("jpeg", (4096, 1024), (320, 320), "stretch", 2),
        ("jpeg", (4096, 1024), (320, 320), "letterbox", 8),  # fits as 320x80
        ("jpeg", (447, 447), (224, 224), "stretch", 2),  # ceil(447 / 2) = 224
        ("jpeg", (446, 446), (224, 224), "stretch", 1),
        ("jpeg", (100, 100), (224, 224), "stretch", 1),  # enlarged, never reduced
        ("png", (4000, 3000), (320, 320), "stretch", 1),  # no DCT scaling for PNG
        ("jpeg", (4000, 3000), None, "stretch", 1),
    ],
)
def test_reduction_factor_is_the_largest_that_keeps_the_target_size(
    fmt: str, size: tuple[int, int], target: tuple[int, int] | None, resize: str, factor: int
) -> None:
    header = ImageHeader(fmt, *size)  # type: ignore[arg-type]
    assert reduction_factor(header, target, resize) == factor  # type: ignore[arg-type]


def test_a_large_jpeg_is_decoded_reduced_but_reports_its_original_size() -> None:
    image = decode_image(encode(photo(4000, 3000), ".jpg"), target_size=(320, 320))
    assert image.pixels.shape == (375, 500, 3)
    assert (image.width, image.height) == (4000, 3000)


def test_reduced_size_rounds_up_like_libjpeg() -> None:
    image = decode_image(encode(photo(1001, 999), ".jpg"), target_size=(100, 100))
    assert image.pixels.shape == (125, 126, 3)  # ceil(999 / 8), ceil(1001 / 8)
    assert (image.width, image.height) == (1001, 999)


SAMPLES = [
    encode(IMAGE, ".jpg"),
    encode(IMAGE, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    with_exif(encode(IMAGE, ".jpg"), 6),
    encode(IMAGE, ".png"),
    encode(np.dstack([IMAGE, IMAGE[..., :1]]), ".png"),
    encode(IMAGE, ".bmp"),
    bmp(IMAGE, header_size=12),
]
DOCUMENTED = (ImageDecodeFailed, InvalidInputSize)


def _check_decoded(data: bytes) -> None:
    try:
        image = decode_image(data, target_size=(16, 16))
    except DOCUMENTED:
        return
    assert image.pixels.dtype == np.uint8 and image.pixels.ndim == 3 and image.pixels.shape[2] == 3
    assert min(image.width, image.height) >= 15 and max(image.width, image.height) <= 4096


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SAMPLES), data=st.data())
def test_decode_on_corrupted_real_images_returns_an_image_or_a_documented_error(
    source: bytes, data: st.DataObject
) -> None:
    corrupt = bytearray(source)
    for position in data.draw(st.lists(st.integers(0, len(corrupt) - 1), max_size=6)):
        corrupt[position] = data.draw(st.integers(0, 255))
    _check_decoded(bytes(corrupt[: data.draw(st.integers(0, len(corrupt)))]))


@settings(max_examples=300, deadline=2000)
@given(
    magic=st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b""]),
    body=st.binary(max_size=400),
)
def test_decode_on_arbitrary_bytes_returns_an_image_or_a_documented_error(magic: bytes, body: bytes) -> None:
    _check_decoded(magic + body)


def test_red_stays_red() -> None:
    """BGR in, BGR out: the decoder does not swap channels."""
    pixels = decode_image(encode(IMAGE, ".png")).pixels
    assert tuple(pixels[0, 0]) == RED
