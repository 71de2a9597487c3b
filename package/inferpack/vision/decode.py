"""Request image -> BGR pixels: base64 text to bytes, bytes to pixels, within the limits.

Both functions raise only the documented ``InferpackError`` subclasses for bad input:
``decode_base64_image``: PayloadTooLarge, Base64DecodeFailed, MissingParameter (empty);
``decode_image``: ImageDecodeFailed, InvalidInputSize. ``decode_image`` is meant for a
thread pool: its work is in OpenCV, which releases the GIL. binascii does not (base64
costs ~3 ms per MiB, under the GIL).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from inferpack.errors import (
    Base64DecodeFailed,
    ImageDecodeFailed,
    InvalidInputSize,
    MissingParameter,
    PayloadTooLarge,
)
from inferpack.vision.geometry import ResizeMode, place
from inferpack.vision.imageinfo import ImageHeader, sniff
from inferpack.vision.limits import DEFAULT_LIMITS, ImageFormat, ImageLimits

_DATA_URI = re.compile(r"\s*data:", re.IGNORECASE)
_WHITESPACE = b" \t\r\n\v\f"
_REDUCED_JPEG = {  # largest first
    8: cv2.IMREAD_REDUCED_COLOR_8,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    2: cv2.IMREAD_REDUCED_COLOR_2,
}
# OpenCV applies EXIF orientation to PNG too, from an eXIf chunk anywhere in the file (even
# after the image data). sniff reads headers only, so PNG is served as stored: its pixels
# then always agree with IHDR. BMP has no orientation.
_FULL_FLAGS: dict[ImageFormat, int] = {
    "jpeg": cv2.IMREAD_COLOR,
    "png": cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
    "bmp": cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Decoded pixels plus the size boxes must be reported in.

    ``pixels`` is BGR uint8 HxWx3, C-contiguous, possibly smaller than ``width`` x
    ``height`` after a reduced JPEG decode; ``width``/``height`` are the original image's
    as displayed (EXIF orientation applied).
    """

    pixels: NDArray[np.uint8]
    width: int
    height: int
    format: ImageFormat


def decode_base64_image(text: str, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """The request's ``image`` field -> file bytes.

    Standard alphabet only (``+/``). Tolerated, because common clients produce them:
    whitespace anywhere (MIME-style line wrapping) and missing ``=`` padding (unambiguous).
    An empty image is MissingParameter: the client sent no image.
    """
    if len(text) > limits.max_base64_bytes:
        raise PayloadTooLarge(f"image is {len(text)} bytes of base64; the limit is {limits.max_base64_bytes}")
    if _DATA_URI.match(text):
        raise Base64DecodeFailed(
            "image starts with a data: URI header; strip it and send only the base64 data after 'base64,'"
        )
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise Base64DecodeFailed("image contains non-ASCII characters") from None
    if len(data) % 4 == 0 and data:
        # The common case, one pass; a wrapped payload fails at its first line break.
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error:
            pass
    data = data.translate(None, _WHITESPACE)
    if not data:
        raise MissingParameter("image is empty")
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except binascii.Error as exc:
        hint = "; use the standard alphabet (+/), not URL-safe (-_)" if b"-" in data or b"_" in data else ""
        raise Base64DecodeFailed(f"image is not valid base64 ({exc}){hint}") from None


def decode_image(
    data: bytes,
    limits: ImageLimits = DEFAULT_LIMITS,
    target_size: tuple[int, int] | None = None,
    *,
    resize: ResizeMode = "stretch",
) -> DecodedImage:
    """Image file bytes -> pixels, refusing bad formats and sizes before decoding.

    ``target_size`` (width, height) and ``resize`` say what the pixels will be resized to
    (the model input and ``InputSpec.resize``); a large JPEG is then decoded reduced
    (see ``reduction_factor``). None decodes at full size.
    """
    header = sniff(data)
    check_header(header, limits)
    factor = reduction_factor(header, target_size, resize)
    flags = _REDUCED_JPEG[factor] if factor > 1 else _FULL_FLAGS[header.format]
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:  # e.g. OpenCV's own pixel cap, see vision/__init__.py
        raise ImageDecodeFailed(f"the {header.format} data could not be decoded: {exc.err}") from exc
    if pixels is None:
        raise ImageDecodeFailed(f"the {header.format} data is corrupt or truncated")
    expected = (-(-header.height // factor), -(-header.width // factor))  # libjpeg rounds up
    if pixels.shape[:2] != expected:
        raise ImageDecodeFailed(
            f"decoded {pixels.shape[1]}x{pixels.shape[0]} px, but the {header.format} header "
            f"declares {header.width}x{header.height}"
        )
    # IMREAD_COLOR always yields 8-bit BGR, converting grey, alpha, palette and 16-bit images.
    return DecodedImage(cast("NDArray[np.uint8]", pixels), header.width, header.height, header.format)


def check_header(header: ImageHeader, limits: ImageLimits) -> None:
    """Format, size and scans against the limits: the decompression-bomb guard, run before
    decoding."""
    if header.format not in limits.formats:
        raise ImageDecodeFailed(f"{header.format} images are not accepted")
    if header.scans > limits.max_jpeg_scans:
        raise ImageDecodeFailed(
            f"the JPEG has {header.scans} scans; at most {limits.max_jpeg_scans} are accepted"
        )
    short, long = sorted((header.width, header.height))
    if short < limits.min_side or long > limits.max_side:
        raise InvalidInputSize(
            f"image is {header.width}x{header.height} px; each side must be between "
            f"{limits.min_side} and {limits.max_side} px"
        )


def reduction_factor(header: ImageHeader, target_size: tuple[int, int] | None, resize: ResizeMode) -> int:
    """1, 2, 4 or 8: the largest JPEG DCT-domain downscale that still leaves the decoded
    image at least as large as the preprocessor will resize it to, on both sides.

    That is cheaper (a 4000x3000 JPEG decodes ~3x faster at 1/8) and, being an average
    over blocks, no worse for quality than decoding in full and shrinking. PNG and BMP
    have no such mode (OpenCV would decode in full, then resize), so they get 1.
    """
    if target_size is None or header.format != "jpeg":
        return 1
    placed = place(header.width, header.height, target_size[0], target_size[1], resize)
    for factor in _REDUCED_JPEG:
        if -(-header.width // factor) >= placed.width and -(-header.height // factor) >= placed.height:
            return factor
    return 1
