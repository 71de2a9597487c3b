"""Input limits from the EasyDL contract, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ImageFormat = Literal["jpeg", "png", "bmp"]


@dataclass(frozen=True)
class ImageLimits:
    """What a request image may be; every check in ``inferpack.vision`` reads these.

    ``max_base64_bytes`` bounds the base64 text as sent (4 MiB), so the decoded file is
    at most 3 MiB. The side limits apply to the image as displayed (after EXIF rotation).
    ``max_jpeg_scans`` bounds a progressive JPEG's passes over the image: encoders write
    about 10, and 100 caps a 4096x4096 decode at ~2 s (libjpeg-turbo's own opt-in limit
    is 500).
    """

    max_base64_bytes: int = 4 * 1024 * 1024
    min_side: int = 15
    max_side: int = 4096
    formats: frozenset[ImageFormat] = frozenset({"jpeg", "png", "bmp"})
    max_jpeg_scans: int = 100

    @property
    def max_raw_bytes(self) -> int:
        """An image sent as raw bytes carries what 4 MiB of base64 would: 3 MiB."""
        return self.max_base64_bytes * 3 // 4


DEFAULT_LIMITS = ImageLimits()
