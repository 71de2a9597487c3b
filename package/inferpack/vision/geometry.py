"""Where an image lands in the model input, and the way back (no OpenCV here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

ResizeMode = Literal["stretch", "letterbox"]


@dataclass(frozen=True, slots=True)
class Placement:
    """The resized image's size and its offset inside the model input."""

    width: int
    height: int
    left: int
    top: int


def place(src_w: int, src_h: int, dst_w: int, dst_h: int, mode: ResizeMode) -> Placement:
    """Stretch fills the input; letterbox keeps the aspect ratio (model.json's rule:
    r = min(W/w, H/h), size round(w*r) x round(h*r), centred with the odd pixel of
    padding right/bottom). Python's round (half to even) matches Ultralytics' letterbox."""
    if mode == "stretch":
        return Placement(dst_w, dst_h, 0, 0)
    r = min(dst_w / src_w, dst_h / src_h)
    width = max(1, round(src_w * r))
    height = max(1, round(src_h * r))
    return Placement(width, height, (dst_w - width) // 2, (dst_h - height) // 2)


@dataclass(frozen=True, slots=True)
class Transform:
    """Maps boxes in model-input pixels back to the original image's pixels.

    The decoded pixels drop out: model input -> decoded is (x - left) * decoded_w / placed_w
    and decoded -> original is * width / decoded_w, so one scale per axis does both,
    including a reduced JPEG decode. That is exact when the original size is a multiple
    of the reduction factor; otherwise libjpeg's rounded-up last block moves edges by less
    than one reduced pixel, which is less than one model-input pixel.
    """

    left: float
    top: float
    scale_x: float  # original pixels per model-input pixel
    scale_y: float
    width: int  # the original image as displayed: boxes are clipped to it
    height: int

    @classmethod
    def of(cls, placement: Placement, width: int, height: int) -> Transform:
        return cls(
            placement.left,
            placement.top,
            width / placement.width,
            height / placement.height,
            width,
            height,
        )

    def to_original(self, boxes: NDArray[np.floating]) -> NDArray[np.float64]:
        """``[N, 4]`` x1, y1, x2, y2 in model-input pixels -> original pixels, clipped."""
        out = np.empty(boxes.shape, np.float64)
        np.subtract(boxes[:, 0::2], self.left, out=out[:, 0::2])
        np.subtract(boxes[:, 1::2], self.top, out=out[:, 1::2])
        out[:, 0::2] *= self.scale_x
        out[:, 1::2] *= self.scale_y
        np.clip(out[:, 0::2], 0.0, self.width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, self.height, out=out[:, 1::2])
        return out
