"""The trained architectures: torchvision's MobileNetV3-Small, as a classifier and as the
backbone of an anchor-free detector whose graph ends in the YOLOv8 output layout.

Both start with a per-image colour standardisation (an affine-free InstanceNorm over the
input): brightness, contrast and colour casts vary between cameras far more than between
classes, and it is part of the graph, so the exported model.json keeps the plain x/255
pre-processing the server already does.

Detector: MobileNetV3-Small's stride-8/16/32 features merged top-down back to stride 8
(a small FPN), then a head that predicts for each cell the distances to the box edges and
one sigmoid score per class (YOLOv8's decoupled, anchor-free form). ``forward`` gives
``[N, 4+C, A]`` (cx, cy, w, h in input pixels, then class scores), which the server decodes
and NMS-filters as any YOLOv8 export; ``raw`` gives the training loss what it needs.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v3_small
from torchvision.ops import Conv2dNormActivation

Architecture = Literal["mobilenet_v3_small", "mobilenet_v3_small-yolo"]
STRIDE = 8
_TAPS = ((0, 4), (4, 9), (9, 12))  # MobileNetV3-Small features[a:b]: strides 8, 16, 32


# torchvision's MobileNetV3 keeps BatchNorm running statistics with momentum 0.01, tuned for
# ImageNet's long schedules; from scratch in a few hundred steps they would still describe the
# initial weights when validation and export use them.
_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)


def _conv(cin: int, cout: int, kernel: int = 3) -> Conv2dNormActivation:
    return Conv2dNormActivation(cin, cout, kernel, activation_layer=nn.SiLU)


def build_classifier(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.InstanceNorm2d(3), mobilenet_v3_small(num_classes=num_classes, norm_layer=_NORM))


class Detector(nn.Module):
    def __init__(self, num_classes: int, width: int, height: int) -> None:
        super().__init__()
        if width % 32 or height % 32:
            raise ValueError(f"the detector's input sides must be multiples of 32, got {width}x{height}")
        features = mobilenet_v3_small(norm_layer=_NORM).features
        self.stem = nn.InstanceNorm2d(3)
        self.s8, self.s16, self.s32 = (nn.Sequential(*features[a:b]) for a, b in _TAPS)
        c8, c16, c32 = self._channels(width, height)
        self.up16 = nn.Sequential(_conv(c32 + c16, 64, 1), _conv(64, 64))
        self.up8 = nn.Sequential(_conv(64 + c8, 64, 1), _conv(64, 64))
        self.box = nn.Sequential(_conv(64, 64), nn.Conv2d(64, 4, 1))
        self.cls = nn.Sequential(_conv(64, 64), nn.Conv2d(64, num_classes, 1))
        last = self.cls[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -4.6)  # start at p=0.01: most cells are background
        ys, xs = torch.meshgrid(torch.arange(height // STRIDE), torch.arange(width // STRIDE), indexing="ij")
        centres = torch.stack([xs, ys]).reshape(2, -1).float() * STRIDE + STRIDE / 2
        self.register_buffer("centres", centres)  # [2, A]

    @torch.no_grad()
    def _channels(self, width: int, height: int) -> tuple[int, int, int]:
        f8 = self.s8(torch.zeros(1, 3, height, width))
        f16 = self.s16(f8)
        return f8.shape[1], f16.shape[1], self.s32(f16).shape[1]

    def raw(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(xyxy boxes [N, 4, A] in input pixels, class logits [N, C, A])."""
        f8 = self.s8(self.stem(x))
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        u16 = self.up16(torch.cat([F.interpolate(f32, scale_factor=2.0, mode="nearest"), f16], 1))
        u8 = self.up8(torch.cat([F.interpolate(u16, scale_factor=2.0, mode="nearest"), f8], 1))
        ltrb = F.softplus(self.box(u8).flatten(2)) * STRIDE  # distances from the cell centre to the edges
        centres: Tensor = self.centres  # type: ignore[assignment]
        xyxy = torch.cat([centres - ltrb[:, :2], centres + ltrb[:, 2:]], dim=1)
        return xyxy, self.cls(u8).flatten(2)

    def forward(self, x: Tensor) -> Tensor:
        return yolov8_layout(*self.raw(x))


def yolov8_layout(xyxy: Tensor, logits: Tensor) -> Tensor:
    """``raw``'s outputs -> [N, 4+C, A]: cx, cy, w, h, then class scores."""
    cxcy = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    wh = xyxy[:, 2:] - xyxy[:, :2]
    return torch.cat([cxcy, wh, torch.sigmoid(logits)], dim=1)


def build_model(architecture: Architecture, num_classes: int, width: int, height: int) -> nn.Module:
    if architecture == "mobilenet_v3_small":
        return build_classifier(num_classes)
    return Detector(num_classes, width, height)


def load_weights(model: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """Copies every tensor whose name and shape match (fine-tuning onto other classes keeps all
    but the class layer); returns the names left as initialised."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
