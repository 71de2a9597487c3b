"""The anchor-free detector's targets and loss (also what the demo detector was trained with).

Positives: the cell holding a box's centre plus neighbouring cells whose centre lies inside
the box and within 2.5 cells of its centre. Loss: GIoU on positives + BCE on class scores
whose positive target is the predicted box's IoU, so a score ranks boxes by how well they
fit, which is what NMS and mAP reward.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.nn import functional as F

BOX_WEIGHT = 2.5


def box_iou_giou(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise IoU and GIoU of xyxy boxes [..., 4]."""
    wh = (torch.min(a[..., 2:], b[..., 2:]) - torch.max(a[..., :2], b[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter + 1e-7
    iou = inter / union
    hull = (torch.max(a[..., 2:], b[..., 2:]) - torch.min(a[..., :2], b[..., :2])).clamp(min=0)
    hull_area = hull[..., 0] * hull[..., 1] + 1e-7
    return iou, iou - (hull_area - union) / hull_area


def assign(boxes: NDArray[np.float32], grid_w: int, grid_h: int, stride: int) -> NDArray[np.int64]:
    """One image's [K, 5] (class, x1, y1, x2, y2) boxes -> per cell the box index (-1: background)."""
    owner = np.full(grid_w * grid_h, -1, np.int64)
    for k, (_, x1, y1, x2, y2) in enumerate(boxes):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        gx = min(grid_w - 1, max(0, int(cx // stride)))
        gy = min(grid_h - 1, max(0, int(cy // stride)))
        for j in range(max(0, gy - 2), min(grid_h, gy + 3)):
            for i in range(max(0, gx - 2), min(grid_w, gx + 3)):
                px, py = (i + 0.5) * stride, (j + 0.5) * stride
                near = abs(px - cx) <= 2.5 * stride and abs(py - cy) <= 2.5 * stride
                inside = x1 < px < x2 and y1 < py < y2
                if (i, j) == (gx, gy) or (near and inside):
                    owner[j * grid_w + i] = k
    return owner


def detector_loss(
    xyxy: Tensor,
    logits: Tensor,
    targets: list[NDArray[np.float32]],
    grid: tuple[int, int],
    stride: int,
    iou_targets: bool = True,
) -> tuple[Tensor, float, float]:
    """(loss, mean IoU of the positives' boxes, their mean GIoU loss) for ``raw`` outputs
    [N, 4, A] and [N, C, A].

    ``iou_targets=False`` scores positives against 1 instead of their IoU: a fixed objective,
    so validation losses of different checkpoints compare.
    """
    n, c, a = logits.shape
    owners = np.stack([assign(t, grid[0], grid[1], stride) for t in targets])  # [N, A]
    pos = torch.from_numpy(owners >= 0).to(logits.device)
    cls_target = torch.zeros(n, c, a, device=logits.device)
    npos = int(pos.sum())
    if npos == 0:
        return F.binary_cross_entropy_with_logits(logits, cls_target, reduction="sum") / n, 0.0, 0.0
    b_idx, a_idx = torch.nonzero(pos, as_tuple=True)
    gt = torch.from_numpy(
        np.stack([targets[b][owners[b, k]] for b, k in zip(b_idx.tolist(), a_idx.tolist(), strict=True)])
    ).to(logits.device)  # [P, 5]
    pred = xyxy[b_idx, :, a_idx]  # [P, 4]
    iou, giou = box_iou_giou(pred, gt[:, 1:])
    cls_target[b_idx, gt[:, 0].long(), a_idx] = iou.detach().clamp(min=0.05) if iou_targets else 1.0
    cls_loss = F.binary_cross_entropy_with_logits(logits, cls_target, reduction="sum") / npos
    box_loss = (1.0 - giou).sum() / npos
    return cls_loss + BOX_WEIGHT * box_loss, float(iou.detach().mean()), float(box_loss.detach())
