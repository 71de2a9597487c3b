"""Training-time augmentation with torchvision's transforms (v2, which moves boxes with the pixels).

Applied to the preprocessed model input (uint8, letterboxed): a horizontal flip, a random
scale/shift whose uncovered border is the letterbox grey, and a colour jitter. Detection
boxes follow the geometry; boxes pushed (almost) out of the picture are dropped.
Validation and export see no augmentation: they are what the server does.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

PAD_GREY = 114  # the letterbox padding (InputSpec.pad_value)


def _colour() -> v2.ColorJitter:
    return v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)


class ClassificationAugment:
    def __init__(self) -> None:
        self._transform = v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomAffine(degrees=0.0, translate=(0.1, 0.1), scale=(0.75, 1.1), fill=PAD_GREY),
                _colour(),
            ]
        )

    def __call__(self, pixels: Tensor) -> Tensor:
        out: Tensor = self._transform(tv_tensors.Image(pixels))
        return out.as_subclass(Tensor)


class DetectionAugment:
    def __init__(self) -> None:
        self._transform = v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomAffine(degrees=0.0, translate=(0.1, 0.1), scale=(0.7, 1.3), fill=PAD_GREY),
                _colour(),
                v2.ClampBoundingBoxes(),
                v2.SanitizeBoundingBoxes(min_size=2.0),
            ]
        )

    def __call__(self, pixels: Tensor, boxes: NDArray[np.float32]) -> tuple[Tensor, NDArray[np.float32]]:
        """(C, H, W uint8 image, [K, 5] class + xyxy boxes) -> the same, augmented."""
        height, width = pixels.shape[-2:]
        out = self._transform(
            {
                "image": tv_tensors.Image(pixels),
                "boxes": tv_tensors.BoundingBoxes(
                    torch.from_numpy(boxes[:, 1:]), format="XYXY", canvas_size=(height, width)
                ),
                "labels": torch.from_numpy(boxes[:, 0]),
            }
        )
        rows = torch.cat([out["labels"][:, None], out["boxes"].as_subclass(Tensor)], dim=1)
        return out["image"].as_subclass(Tensor), rows.numpy().astype(np.float32).reshape(-1, 5)
