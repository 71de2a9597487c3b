"""Decoded image -> one model-input sample, exactly as ``InputSpec`` (bundle.py) describes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from inferpack.bundle import InputSpec
from inferpack.vision.decode import DecodedImage
from inferpack.vision.geometry import Transform, place

if TYPE_CHECKING:
    from cv2.typing import MatLike

__all__ = ["Preprocessor", "Transform"]  # Transform: what callers keep next to a sample

# Shrinking by 2x or more, INTER_LINEAR's 2-tap filter skips pixels and aliases: 3-px
# stripes shrunk 2.9x come out as moire (std 64 grey levels) where INTER_AREA, which
# averages every pixel, leaves std 3. Below 2x the gap is small and INTER_AREA ~10x
# slower (1.3 vs 0.1 ms for 640x480 -> 224x224); after a reduced JPEG decode most
# images land there.
_AREA_FROM_SHRINK = 2.0


class Preprocessor:
    """Resizes (stretch or letterbox), orders colours, scales and normalises into float32.

    ``x * scale``, then ``(x - mean) / std`` per channel, is applied as one multiply-add
    per element: ``x * (scale / std) - mean / std``.
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.sample_shape = spec.tensor_shape(1)[1:]
        std = np.asarray(spec.std, np.float64)
        alpha = (spec.scale / std).astype(np.float32)
        beta = (-np.asarray(spec.mean, np.float64) / std).astype(np.float32)
        if spec.layout == "NCHW":
            self._alpha = alpha.reshape(3, 1, 1)
            self._beta = beta.reshape(3, 1, 1)
        else:
            # One whole-row pattern: broadcasting over a last axis of 3 is ~6x slower.
            self._alpha = np.tile(alpha, spec.width)
            self._beta = np.tile(beta, spec.width)
        self._pad = (spec.pad_value,) * 3

    def __call__(
        self, image: DecodedImage, out: NDArray[np.float32] | None = None
    ) -> tuple[NDArray[np.float32], Transform]:
        """Writes the sample into ``out`` (e.g. a view into the batch buffer) or a new array.

        Returns it with the ``Transform`` that maps boxes in model-input pixels back to
        ``image``'s original pixels.
        """
        spec = self.spec
        if out is None:
            out = np.empty(self.sample_shape, np.float32)
        elif out.shape != self.sample_shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {self.sample_shape}")
        src = image.pixels
        placement = place(src.shape[1], src.shape[0], spec.width, spec.height, spec.resize)
        pixels = _resize(src, placement.width, placement.height)
        if (placement.width, placement.height) != (spec.width, spec.height):
            right = spec.width - placement.width - placement.left
            bottom = spec.height - placement.height - placement.top
            pixels = cv2.copyMakeBorder(
                pixels, placement.top, bottom, placement.left, right, cv2.BORDER_CONSTANT, value=self._pad
            )
        if spec.layout == "NCHW":
            planes = pixels.transpose(2, 0, 1)  # a view; the multiply below does the copy
            np.multiply(planes[::-1] if spec.color == "RGB" else planes, self._alpha, out=out)
            np.add(out, self._beta, out=out)
        else:
            if spec.color == "RGB":
                pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
            rows = out.reshape(spec.height, spec.width * 3)
            np.multiply(pixels.reshape(rows.shape), self._alpha, out=rows)
            np.add(rows, self._beta, out=rows)
        return out, Transform.of(placement, image.width, image.height)


def _resize(src: MatLike, width: int, height: int) -> MatLike:
    h, w = src.shape[:2]
    if (w, h) == (width, height):
        return src
    shrink = max(w / width, h / height)
    interpolation = cv2.INTER_AREA if shrink >= _AREA_FROM_SHRINK else cv2.INTER_LINEAR
    return cv2.resize(src, (width, height), interpolation=interpolation)
