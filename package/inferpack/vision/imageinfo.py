"""Image format, size and structure from the headers alone, before anything is decoded.

``sniff`` is what lets ``decode_image`` refuse an oversized image (a decompression bomb:
a few KiB declaring 50000x50000) before OpenCV allocates for it, and what it checks the
decoder's output against. It also catches two cheap ways to make OpenCV 4.14 work hard
that a size check misses: a PNG chunk declaring more bytes than the file has (OpenCV
allocates the declared length first: 150 bytes can cost 4 GiB) and a progressive JPEG
with thousands of scans (each one a pass over the whole image: 1000 scans of a 4096x4096
image take ~20 s). It reads headers only (and counts JPEG scan markers with one C-speed
search), in bounded loops, and raises nothing but ``ImageDecodeFailed`` whatever the input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from inferpack.errors import ImageDecodeFailed
from inferpack.vision.limits import ImageFormat

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"  # SOI and the next marker's 0xFF: OpenCV's own JPEG signature
_BMP_MAGIC = b"BM"
_OTHER_FORMATS = (  # recognised only to say what the client sent instead
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)

# SOFn frame headers; 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_SOS, _JPEG_EOI, _JPEG_APP1 = 0xDA, 0xD9, 0xE1
# Real files have a few dozen markers before the scan (a long ICC profile is split in
# at most 255 APP2 segments); the cap bounds the Python loop on hostile input.
_JPEG_MAX_STEPS = 2048
_EXIF_ORIENTATION_TAG = 0x0112

# A 3 MiB PNG has a few hundred chunks (encoders write 8-64 KiB IDATs); bounds the loop.
_PNG_MAX_CHUNKS = 10_000

# BITMAPCOREHEADER is 12 bytes; the BITMAPINFOHEADER family (v1-v5, OS/2 2.x) share its layout.
_BMP_CORE_HEADER = 12
_BMP_INFO_HEADERS = frozenset({40, 52, 56, 64, 108, 124})


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header declares. ``width``/``height`` are as displayed: for EXIF
    orientations 5-8 (a 90 degree turn) they are the stored height/width."""

    format: ImageFormat
    width: int
    height: int
    orientation: int = 1  # EXIF orientation, 1-8; only JPEG is read (see decode.py)
    scans: int = 1  # JPEG: scan (SOS) markers up to EOI, the decoder's passes over the image


def sniff(data: bytes) -> ImageHeader:
    """Format and displayed size of a jpg/png/bmp, from its header; ImageDecodeFailed otherwise."""
    if data.startswith(_JPEG_MAGIC):
        return _jpeg(data)
    if data.startswith(_PNG_MAGIC):
        return _png(data)
    if data.startswith(_BMP_MAGIC):
        return _bmp(data)
    raise ImageDecodeFailed(f"not a jpg/png/bmp image{_guess_other(data)}")


def _guess_other(data: bytes) -> str:
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            return f" (looks like {name})"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return " (looks like WebP)"
    if data[4:8] == b"ftyp":
        return " (looks like HEIF/AVIF)"
    return ""


def _png(data: bytes) -> ImageHeader:
    # signature, then the IHDR chunk: length (13), type, width, height (big-endian)
    if len(data) < 24:
        raise ImageDecodeFailed("truncated PNG header")
    length, kind, width, height = struct.unpack_from(">I4sII", data, 8)
    if kind != b"IHDR" or length != 13:
        raise ImageDecodeFailed("corrupt PNG header: the first chunk is not IHDR")
    if width == 0 or height == 0:
        raise ImageDecodeFailed(f"corrupt PNG header: declares {width}x{height} px")
    _check_png_chunks(data)
    return ImageHeader("png", width, height)


def _check_png_chunks(data: bytes) -> None:
    """Every chunk up to IEND fits in the file (OpenCV allocates what a chunk declares)."""
    pos = 8
    for _ in range(_PNG_MAX_CHUNKS):
        if pos + 8 > len(data):
            return  # cut between chunks: nothing over-declared, the decoder reports it
        length, kind = struct.unpack_from(">I4s", data, pos)
        if pos + 12 + length > len(data):
            raise ImageDecodeFailed(
                f"truncated or corrupt PNG: the chunk at offset {pos} declares {length} bytes, "
                "past the end of the file"
            )
        if kind == b"IEND":
            return
        pos += 12 + length
    raise ImageDecodeFailed("corrupt PNG: too many chunks")


def _bmp(data: bytes) -> ImageHeader:
    # BITMAPFILEHEADER (14 bytes), then the DIB header, whose first field is its own size
    if len(data) < 18:
        raise ImageDecodeFailed("truncated BMP header")
    (dib_size,) = struct.unpack_from("<I", data, 14)
    if dib_size == _BMP_CORE_HEADER:
        if len(data) < 22:
            raise ImageDecodeFailed("truncated BMP header")
        width, height = struct.unpack_from("<HH", data, 18)
    elif dib_size in _BMP_INFO_HEADERS:
        if len(data) < 26:
            raise ImageDecodeFailed("truncated BMP header")
        width, height = struct.unpack_from("<ii", data, 18)
        height = abs(height)  # negative: rows stored top-down
    else:
        raise ImageDecodeFailed(f"unsupported BMP header size {dib_size}")
    if width <= 0 or height == 0:
        raise ImageDecodeFailed(f"corrupt BMP header: declares {width}x{height} px")
    return ImageHeader("bmp", width, height)


def _jpeg(data: bytes) -> ImageHeader:
    """Walks the markers up to the first scan: the first SOFn gives the size, the first
    Exif APP1 the orientation (it may come after the SOF, and OpenCV still applies it)."""
    size: tuple[int, int] | None = None
    orientation: int | None = None
    end = len(data)
    pos = 2
    for _ in range(_JPEG_MAX_STEPS):
        pos = data.find(b"\xff", pos)  # libjpeg skips stray bytes before a marker too
        if pos < 0 or pos + 4 > end:
            raise ImageDecodeFailed("truncated JPEG header")
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 1 if marker == 0xFF else 2  # fill byte, or a marker without a length
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break
        segment_end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        if segment_end < pos + 4:
            raise ImageDecodeFailed(f"corrupt JPEG header: bad segment length at offset {pos}")
        if marker in _JPEG_SOF and size is None:
            if pos + 9 > end:
                raise ImageDecodeFailed("truncated JPEG header")
            height, width = struct.unpack_from(">HH", data, pos + 5)  # after length, precision
            if width == 0 or height == 0:
                raise ImageDecodeFailed(f"corrupt JPEG header: frame declares {width}x{height} px")
            size = (width, height)
        elif marker == _JPEG_APP1 and orientation is None and data.startswith(b"Exif\0\0", pos + 4):
            orientation = _exif_orientation(data[pos + 10 : segment_end])
        pos = segment_end
    else:
        raise ImageDecodeFailed("corrupt JPEG header: too many markers before the image data")
    if size is None:
        raise ImageDecodeFailed("corrupt JPEG header: no frame (SOF) marker before the image data")
    # Entropy-coded data escapes 0xFF as FF 00, so FF DA after the first scan is a scan
    # marker (or, rarely, a byte pair in a table between scans: over-counting is harmless).
    eoi = data.find(b"\xff\xd9", pos)
    scans = data.count(b"\xff\xda", pos, len(data) if eoi < 0 else eoi)
    orientation = orientation or 1
    width, height = size
    if orientation >= 5:
        width, height = height, width
    return ImageHeader("jpeg", width, height, orientation, scans)


def _exif_orientation(tiff: bytes) -> int:
    """IFD0's Orientation from a TIFF structure, 1 when absent or unreadable.

    Read as OpenCV reads it (a SHORT at the value field, whatever the declared type and
    count; values outside 1-8 ignored), so that what we report is what it decodes.
    """
    if len(tiff) < 8:
        return 1
    if tiff.startswith(b"II"):
        order = "<"
    elif tiff.startswith(b"MM"):
        order = ">"
    else:
        return 1
    magic, ifd = struct.unpack_from(order + "HI", tiff, 2)
    if magic != 42 or ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, _, _, value = struct.unpack_from(order + "HHIH", tiff, entry)
        if tag == _EXIF_ORIENTATION_TAG:
            return value if 1 <= value <= 8 else 1
    return 1
