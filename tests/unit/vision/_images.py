"""Real encoded images for the vision tests, including ones cv2 cannot write (palette PNG,
old BMP headers, EXIF orientation, decompression bombs), built byte by byte."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

RED = (0, 0, 255)  # BGR, as OpenCV stores pixels


def encode(image: np.ndarray, ext: str = ".jpg", *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def marked(width: int, height: int) -> np.ndarray:
    """Grey, with a red block in the top-left quarter-ish: shows any rotation or flip."""
    image = np.full((height, width, 3), 90, np.uint8)
    image[: height // 3, : width // 4] = RED
    return image


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields: compresses like a photo, unlike noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def tiff_orientation(orientation: int, order: str = "II") -> bytes:
    e = "<" if order == "II" else ">"
    entry = struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    return order.encode() + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", 1) + entry + b"\0" * 4


def app_segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def with_exif(jpeg: bytes, orientation: int, order: str = "II", after_frame: bool = False) -> bytes:
    """The JPEG with an Exif APP1 carrying only an Orientation tag, right after SOI or
    (``after_frame``) just before the scan, which OpenCV honours as well."""
    segment = app_segment(0xE1, b"Exif\0\0" + tiff_orientation(orientation, order))
    at = jpeg.index(b"\xff\xda") if after_frame else 2
    return jpeg[:at] + segment + jpeg[at:]


def oriented(image: np.ndarray, orientation: int) -> np.ndarray:
    """How an EXIF viewer displays stored pixels with this orientation."""
    steps = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps[orientation](image))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG from raw scanlines (each already prefixed with its filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def palette_png(indices: np.ndarray, palette: list[tuple[int, int, int]]) -> bytes:
    """8-bit palette PNG (colour type 3); ``palette`` entries are RGB."""
    height, width = indices.shape
    rows = b"".join(b"\0" + indices[y].astype(np.uint8).tobytes() for y in range(height))
    plte = png_chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
    return png(width, height, 8, 3, rows, extra=plte)


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring a huge image, with a few bytes of (deflated zero) body."""
    return png(width, height, 8, 2, b"\0" * 64)


def jpeg_bomb(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is patched to declare a huge size."""
    data = bytearray(encode(np.zeros((16, 16, 3), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp(image: np.ndarray, header_size: int = 40, top_down: bool = False) -> bytes:
    """24-bit uncompressed BMP with the given DIB header size (12 = BITMAPCOREHEADER)."""
    height, width = image.shape[:2]
    stride = (width * 3 + 3) & ~3
    rows = image if top_down else image[::-1]
    pixels = b"".join(row.tobytes().ljust(stride, b"\0") for row in rows)
    if header_size == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, 24)
    else:
        dib = struct.pack(
            "<IiiHHIIiiII",
            header_size,
            width,
            -height if top_down else height,
            1,
            24,
            0,
            len(pixels),
            0,
            0,
            0,
            0,
        ).ljust(header_size, b"\0")
    offset = 14 + len(dib)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + pixels


def with_scans(progressive_jpeg: bytes, extra: int) -> bytes:
    """The progressive JPEG with its last scan repeated: libjpeg warns, then does each pass."""
    last_scan = progressive_jpeg[progressive_jpeg.rindex(b"\xff\xda") : -2]
    return progressive_jpeg[:-2] + last_scan * extra + b"\xff\xd9"
