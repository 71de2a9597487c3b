from __future__ import annotations

import contextlib
import re
import struct
import time

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferpack.errors import ImageDecodeFailed
from inferpack.vision.imageinfo import ImageHeader, sniff

from ._images import (
    app_segment,
    bmp,
    encode,
    marked,
    palette_png,
    png,
    png_chunk,
    tiff_orientation,
    with_exif,
    with_scans,
)

JPEG = encode(marked(40, 30), ".jpg")
PNG = encode(marked(40, 30), ".png")
BMP = encode(marked(40, 30), ".bmp")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (JPEG, ImageHeader("jpeg", 40, 30)),
        (
            encode(marked(40, 30), ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
            ImageHeader("jpeg", 40, 30, scans=10),
        ),
        (encode(np.zeros((30, 40), np.uint8), ".jpg"), ImageHeader("jpeg", 40, 30)),
        (PNG, ImageHeader("png", 40, 30)),
        (palette_png(np.zeros((30, 40), np.uint8), [(1, 2, 3)]), ImageHeader("png", 40, 30)),
        (BMP, ImageHeader("bmp", 40, 30)),
        (bmp(marked(40, 30), header_size=12), ImageHeader("bmp", 40, 30)),
        (bmp(marked(40, 30), header_size=108), ImageHeader("bmp", 40, 30)),
        (bmp(marked(40, 30), header_size=124, top_down=True), ImageHeader("bmp", 40, 30)),
    ],
    ids=[
        "jpeg",
        "progressive",
        "grey-jpeg",
        "png",
        "palette-png",
        "bmp",
        "bmp-core",
        "bmp-v4",
        "bmp-v5-top-down",
    ],
)
def test_sniff_reads_format_and_size(data: bytes, expected: ImageHeader) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("order", ["II", "MM"])
def test_jpeg_size_is_reported_as_displayed(orientation: int, order: str) -> None:
    header = sniff(with_exif(JPEG, orientation, order))
    turned = orientation >= 5
    assert (header.width, header.height) == ((30, 40) if turned else (40, 30))
    assert header.orientation == orientation


def test_exif_after_the_frame_header_counts_and_the_first_exif_wins() -> None:
    assert sniff(with_exif(JPEG, 6, after_frame=True)).orientation == 6
    assert sniff(with_exif(with_exif(JPEG, 1), 6)).orientation == 6  # the 6 is inserted first
    xmp = app_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>")
    assert sniff(with_exif(JPEG, 8)[:2] + xmp + with_exif(JPEG, 8)[2:]).orientation == 8


@pytest.mark.parametrize(
    "tiff",
    [
        b"",
        b"XX*\x00\x08\x00\x00\x00",  # unknown byte order
        tiff_orientation(6).replace(b"II*", b"II+"),  # wrong magic
        tiff_orientation(9),  # out of range
        b"II*\x00" + struct.pack("<I", 10_000),  # IFD beyond the data
        tiff_orientation(6)[:-10],  # entry cut short
    ],
)
def test_unreadable_exif_means_no_rotation(tiff: bytes) -> None:
    data = JPEG[:2] + app_segment(0xE1, b"Exif\0\0" + tiff) + JPEG[2:]
    assert sniff(data) == ImageHeader("jpeg", 40, 30, 1)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "not a jpg/png/bmp image"),
        (b"GIF89a" + b"\0" * 20, "looks like GIF"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "looks like WebP"),
        (b"\0\0\0\x18ftypheic", "looks like HEIF"),
        (b"II*\x00" + b"\0" * 20, "looks like TIFF"),
        (b"hello world", "not a jpg/png/bmp image"),
        (PNG[:20], "truncated PNG header"),
        (PNG[:12] + b"IDAT" + PNG[16:], "not IHDR"),
        (png(0, 10, 8, 2, b""), "declares 0x10"),
        (BMP[:17], "truncated BMP header"),
        (BMP[:14] + struct.pack("<I", 33) + BMP[18:], "unsupported BMP header size 33"),
        (BMP[:18] + struct.pack("<i", -40) + BMP[22:], "declares -40x30"),
        (JPEG[:3], "truncated JPEG header"),
        (JPEG[:2] + b"\xff\xe0\x00\x01" + JPEG[4:], "bad segment length at offset 2"),
        (JPEG[:2] + b"\xff\xd9", "truncated JPEG header"),
        (JPEG[:2] + b"\xff\xd9" + b"\0" * 10, "no frame (SOF) marker"),
    ],
)
def test_bad_headers_are_refused_with_a_reason(data: bytes, detail: str) -> None:
    with pytest.raises(ImageDecodeFailed, match=re.escape(detail)):
        sniff(data)


def test_a_zero_size_jpeg_frame_is_refused() -> None:
    sof = JPEG.index(b"\xff\xc0")
    with pytest.raises(ImageDecodeFailed, match="declares 40x0"):
        sniff(JPEG[: sof + 5] + b"\0\0" + JPEG[sof + 7 :])


@pytest.mark.parametrize("data", [JPEG, PNG, BMP, with_exif(JPEG, 6)])
def test_every_truncated_header_is_refused(data: bytes) -> None:
    header = sniff(data)
    for end in range(len(data)):
        with contextlib.suppress(ImageDecodeFailed):
            assert sniff(data[:end]) == header  # once the header is complete, so is the answer


@pytest.mark.parametrize(
    "body",
    [
        b"\xff" * 3_000_000,  # fill bytes
        b"\xff\x01" * 1_500_000,  # markers without a length
        app_segment(0xE2, b"x") * 500_000,  # tiny segments
        b"\x00" * 3_000_000,  # stray bytes, no marker at all
    ],
    ids=["fill", "standalone", "segments", "no-marker"],
)
def test_hostile_jpeg_headers_end_quickly(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(ImageDecodeFailed):
        sniff(b"\xff\xd8\xff" + body)
    assert time.perf_counter() - started < 0.5


def test_an_icc_profile_split_over_many_segments_is_fine() -> None:
    icc = app_segment(0xE2, b"ICC_PROFILE\0" + b"\0" * 1000) * 255
    assert sniff(JPEG[:2] + icc + JPEG[2:]).width == 40


def test_jpeg_scans_are_counted_from_the_first_scan_to_eoi() -> None:
    progressive = encode(marked(40, 30), ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    assert sniff(with_scans(progressive, 500)).scans == 510
    # an Exif thumbnail before the frame, and images appended after EOI, are not passes over this one
    thumbnail = app_segment(0xE1, b"Exif\0\0" + tiff_orientation(1) + JPEG)
    assert sniff(JPEG[:2] + thumbnail + JPEG[2:] + JPEG + progressive).scans == 1


@pytest.mark.parametrize("length", [0x7FFF_FFFF, 0xFFFF_FFFF, 1000])
def test_a_png_chunk_longer_than_the_file_is_refused_without_allocating(length: int) -> None:
    """OpenCV 4.14 would allocate the declared length (up to 4 GiB) before noticing."""
    ihdr_end = 8 + 25
    data = PNG[:ihdr_end] + length.to_bytes(4, "big") + PNG[ihdr_end + 4 :]
    with pytest.raises(ImageDecodeFailed, match=f"offset 33 declares {length} bytes, past the end"):
        sniff(data)


def test_png_chunks_after_iend_and_a_cut_between_chunks_are_left_to_the_decoder() -> None:
    assert sniff(PNG + b"\xff" * 20).width == 40
    iend = PNG.rindex(b"IEND") - 4
    assert sniff(PNG[:iend]).width == 40


def test_a_png_with_absurdly_many_chunks_is_refused_quickly() -> None:
    data = PNG[:33] + png_chunk(b"tEXt", b"") * 200_000 + PNG[33:]
    started = time.perf_counter()
    with pytest.raises(ImageDecodeFailed, match="too many chunks"):
        sniff(data)
    assert time.perf_counter() - started < 0.5


MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"\xff\xd8\xff\xe1\x00\x40Exif\0\0II*\0", b""]


@settings(max_examples=500, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=300))
def test_sniff_on_arbitrary_bytes_returns_a_header_or_image_decode_failed(magic: bytes, body: bytes) -> None:
    try:
        header = sniff(magic + body)
    except ImageDecodeFailed:
        return
    assert header.format in ("jpeg", "png", "bmp")
    assert header.width > 0 and header.height > 0 and 1 <= header.orientation <= 8


@settings(max_examples=300, deadline=1000)
@given(source=st.sampled_from([JPEG, PNG, BMP, with_exif(JPEG, 6)]), data=st.data())
def test_sniff_on_corrupted_real_headers_returns_a_header_or_image_decode_failed(
    source: bytes, data: st.DataObject
) -> None:
    corrupt = bytearray(source[:400])
    for position in data.draw(st.lists(st.integers(0, len(corrupt) - 1), max_size=8)):
        corrupt[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ImageDecodeFailed):
        sniff(bytes(corrupt[: data.draw(st.integers(0, len(corrupt)))]))
