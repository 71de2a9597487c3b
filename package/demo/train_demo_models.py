"""Trains the embedded demo models on synthetic shapes and exports them as inferpack bundles.

Dev-only: nothing in the product imports this. It needs PyTorch (the ``[train]`` extra, whose
``inferpack train`` trains torchvision architectures for vendors; these small home-made nets
are only the embedded demo's), e.g. in a venv of its own::

    python3 -m venv /work/torchenv
    /work/torchenv/bin/pip install torch numpy==2.4.6 opencv-python-headless==4.14.0.94 onnx onnxruntime
    /work/torchenv/bin/python package/demo/train_demo_models.py            # both models
    /work/torchenv/bin/python package/demo/train_demo_models.py detector   # or one of them

Same NumPy and OpenCV as the server (package/requirements.txt), because the training images
go through the server's own code: JPEG encode, ``decode_image`` (which may decode a large
JPEG reduced) and ``Preprocessor`` with the bundle's ``InputSpec``. What the model learns on
is then exactly what it is served, letterbox padding included, so wide and tall images are
not distorted.

Models (both letterbox, RGB, x/255, NCHW, dynamic batch axis, ONNX opset 13):

- shapes-classifier: 96x96 input, per-image colour standardisation (InstanceNorm: the
  shapes' colours are random, so colour must not matter; without it training sat at chance
  for several epochs), 6 convs, global average + max pooling (a small shape on a large
  background must not be averaged away) -> 3 logits.
- shapes-detector: 256x256 input, anchor-free, one 32x32 grid (stride 8) fed by a small
  encoder-decoder (InstanceNorm input as above; stride 32 context merged back to stride
  8). Each cell predicts distances to the box edges and per-class sigmoid scores; the
  graph turns them into the YOLOv8 layout ``[N, 4+3, 1024]`` (cx, cy, w, h in input
  pixels), so the server's real yolov8 decoding and NMS are what serve it. Positives: the
  cell holding the box centre plus neighbouring cells whose centre is inside the box and
  within 2.5 cells of its centre (``inferpack.training.detection_loss``, shared with the
  workbench's detector). Loss: GIoU on positives + BCE on class scores whose
  positive target is the predicted box's IoU (so a score ranks boxes by how well they fit,
  which is what NMS and mAP reward).

Last run: ``/work/torchenv/bin/python package/demo/train_demo_models.py`` (defaults below),
torch 2.15.0, 2 CPU threads on a 2-core machine shared with other jobs (load average 4-9, so
expect it faster on an idle one), 2990 s in all:

- classifier: 4000 images (made in 50 s), 12 epochs, 424 s; last epoch loss 0.202 (label
  smoothing 0.05), train accuracy 0.994; exported 676 KiB; top-1 on 1000 held-out images
  (seed 2) through ONNX Runtime and the server's postprocess: 0.986.
- detector: 2500 scenes (made in 19 s), 14 epochs, 2542 s (60-240 s an epoch as the load
  varied); last epoch loss 0.689, mean IoU of positive cells' boxes 0.909; exported 1269 KiB;
  mAP@0.5 on 500 held-out scenes (seed 2, model-input pixels, server's yolov8 decoding + NMS
  at threshold 0.05): 0.977 (circle 0.975, square 0.981, triangle 0.975).

tests/integration/test_demo_models.py checks the committed models again over HTTP on other
seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "package"))

from inferpack.bundle import InputSpec, read_bundle  # noqa: E402
from inferpack.demo import demo_model_dir  # noqa: E402
from inferpack.demo.shapes import LABELS, classification_sample, detection_scene  # noqa: E402
from inferpack.evaluation.classification import evaluate_classification  # noqa: E402
from inferpack.evaluation.detection import Box, evaluate_detection  # noqa: E402
from inferpack.training.detection_loss import detector_loss  # noqa: E402
from inferpack.vision.decode import decode_image  # noqa: E402
from inferpack.vision.geometry import place  # noqa: E402
from inferpack.vision.postprocess import classify, detect  # noqa: E402
from inferpack.vision.preprocess import Preprocessor  # noqa: E402

TRAIN_SEED = 1  # the held-out sets (tests, validation here) use other seeds
VAL_SEED = 2
CLS_SIZE = 96
DET_SIZE = 256
STRIDE = 8
GRID = DET_SIZE // STRIDE


def input_spec(size: int) -> InputSpec:
    return InputSpec(name="images", width=size, height=size, resize="letterbox")


def bundle_json(task: str, name: str, size: int, output: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "name": name,
        "version": "1.0.0",
        "task": task,
        "labels": list(LABELS),
        "input": {
            "name": "images",
            "width": size,
            "height": size,
            "layout": "NCHW",
            "color": "RGB",
            "resize": "letterbox",
            "pad_value": 114,
            "scale": 1.0 / 255.0,
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
        },
        "output": output,
    }


# ---------------------------------------------------------------- data, through the server's code


def serve_path(image: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
    """BGR image -> (uint8 CHW model input x255, Transform), as the server would see it as JPEG."""
    quality = int(rng.integers(70, 96))
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = decode_image(jpeg.tobytes(), target_size=(size, size), resize="letterbox")
    tensor, transform = Preprocessor(input_spec(size))(decoded)
    return np.rint(tensor * 255.0).astype(np.uint8), transform


def _cls_item(args: tuple[int, int]) -> tuple[np.ndarray, int]:
    seed, index = args
    rng = np.random.default_rng([seed, index])
    image, label = classification_sample(rng)
    tensor, _ = serve_path(image, CLS_SIZE, rng)
    return tensor, LABELS.index(label)


def _det_item(args: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Scene -> (input, [K, 5] class, x1, y1, x2, y2 in model-input pixels)."""
    seed, index = args
    rng = np.random.default_rng([seed, index])
    image, boxes = detection_scene(rng)
    tensor, _ = serve_path(image, DET_SIZE, rng)
    h, w = image.shape[:2]
    p = place(w, h, DET_SIZE, DET_SIZE, "letterbox")
    sx, sy = p.width / w, p.height / h
    rows = [
        [LABELS.index(label), x1 * sx + p.left, y1 * sy + p.top, x2 * sx + p.left, y2 * sy + p.top]
        for label, x1, y1, x2, y2 in boxes
    ]
    return tensor, np.asarray(rows, np.float32).reshape(-1, 5)


def generate(item: Any, seed: int, count: int) -> list[Any]:
    with Pool(2) as pool:
        return pool.map(item, [(seed, i) for i in range(count)], chunksize=64)


# ---------------------------------------------------------------- models


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


def pointwise(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.InstanceNorm2d(3),  # per-image colour standardisation: the shapes' colours mean nothing
            conv(3, 16, 2),
            conv(16, 32, 2),
            conv(32, 32),
            conv(32, 64, 2),
            conv(64, 96, 2),
            conv(96, 96),
        )
        self.head = nn.Linear(2 * 96, len(LABELS))

    def forward(self, x: Tensor) -> Tensor:
        # Max pooling as well as the mean: a small shape on a large background must not be
        # averaged away.
        f = self.features(x)
        return self.head(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


class Detector(nn.Module):
    """Encoder to stride 32, decoder back to stride 8; output [N, 4+C, A] (YOLOv8 layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.s4 = nn.Sequential(nn.InstanceNorm2d(3), conv(3, 16, 2), conv(16, 24, 2))
        self.s8 = nn.Sequential(conv(24, 40, 2), conv(40, 40))
        self.s16 = nn.Sequential(conv(40, 64, 2), conv(64, 64))
        self.s32 = nn.Sequential(conv(64, 96, 2), conv(96, 96))
        self.up16 = nn.Sequential(pointwise(96 + 64, 64), conv(64, 64))
        self.up8 = nn.Sequential(pointwise(64 + 40, 48), conv(48, 48))
        self.head = nn.Sequential(conv(48, 48), nn.Conv2d(48, 4 + len(LABELS), 1))
        nn.init.constant_(self.head[-1].bias[4:], -4.6)  # start at p=0.01: most cells are background
        ys, xs = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
        centres = torch.stack([xs, ys]).reshape(2, -1).float() * STRIDE + STRIDE / 2
        self.register_buffer("centres", centres)  # [2, A]

    def raw(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(xyxy boxes [N, 4, A] in input pixels, class logits [N, C, A])."""
        f4 = self.s4(x)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        u16 = self.up16(torch.cat([F.interpolate(f32, scale_factor=2.0, mode="nearest"), f16], 1))
        u8 = self.up8(torch.cat([F.interpolate(u16, scale_factor=2.0, mode="nearest"), f8], 1))
        out = self.head(u8).flatten(2)
        ltrb = F.softplus(out[:, :4]) * STRIDE  # distances from the cell centre to the edges
        centres: Tensor = self.centres  # type: ignore[assignment]
        xyxy = torch.cat([centres - ltrb[:, :2], centres + ltrb[:, 2:]], dim=1)
        return xyxy, out[:, 4:]

    def forward(self, x: Tensor) -> Tensor:
        xyxy, logits = self.raw(x)
        cxcy = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        wh = xyxy[:, 2:] - xyxy[:, :2]
        return torch.cat([cxcy, wh, torch.sigmoid(logits)], dim=1)


# ---------------------------------------------------------------- training


def augment(x: Tensor) -> tuple[Tensor, int, int]:
    """Random flips of a batch (labels are flip-invariant); returns the flips for the boxes."""
    fx, fy = int(torch.randint(2, ())), int(torch.randint(2, ()))
    dims = [d for d, f in ((3, fx), (2, fy)) if f]
    return (x.flip(dims) if dims else x), fx, fy


def train_classifier(epochs: int, count: int) -> Classifier:
    t0 = time.time()
    data = generate(_cls_item, TRAIN_SEED, count)
    x_all = torch.from_numpy(np.stack([d[0] for d in data]))
    y_all = torch.tensor([d[1] for d in data])
    print(f"classifier: {count} images made in {time.time() - t0:.0f}s", flush=True)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(count / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.15)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(count)
        total, correct = 0.0, 0
        for i in range(0, count, 64):
            idx = perm[i : i + 64]
            x, _, _ = augment(x_all[idx].float() / 255.0)
            if torch.rand(()) < 0.5:
                x = x.transpose(2, 3)  # a 90-degree turn plus a flip: portrait <-> landscape
            logits = model(x)
            loss = F.cross_entropy(logits, y_all[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y_all[idx]).sum())
        print(
            f"classifier epoch {epoch + 1}/{epochs}: loss {total / count:.4f} "
            f"train acc {correct / count:.4f} ({time.time() - t0:.0f}s)",
            flush=True,
        )
    return model.eval()


def flip_boxes(boxes: np.ndarray, fx: int, fy: int) -> np.ndarray:
    out = boxes.copy()
    if fx:
        out[:, 1], out[:, 3] = DET_SIZE - boxes[:, 3], DET_SIZE - boxes[:, 1]
    if fy:
        out[:, 2], out[:, 4] = DET_SIZE - boxes[:, 4], DET_SIZE - boxes[:, 2]
    return out


def train_detector(epochs: int, count: int) -> Detector:
    t0 = time.time()
    data = generate(_det_item, TRAIN_SEED, count)
    x_all = torch.from_numpy(np.stack([d[0] for d in data]))
    targets = [d[1] for d in data]
    print(f"detector: {count} scenes made in {time.time() - t0:.0f}s", flush=True)
    model = Detector()
    batch = 32
    opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(count / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(count)
        total, iou_sum, batches = 0.0, 0.0, 0
        for i in range(0, count, batch):
            idx = perm[i : i + batch]
            x, fx, fy = augment(x_all[idx].float() / 255.0)
            boxes = [flip_boxes(targets[k], fx, fy) for k in idx.tolist()]
            if torch.rand(()) < 0.5:  # portrait <-> landscape
                x = x.transpose(2, 3)
                boxes = [b[:, [0, 2, 1, 4, 3]] for b in boxes]
            loss, mean_iou, _ = detector_loss(*model.raw(x), boxes, (GRID, GRID), STRIDE)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            total += float(loss)
            iou_sum += mean_iou
            batches += 1
        print(
            f"detector epoch {epoch + 1}/{epochs}: loss {total / batches:.4f} "
            f"positives' IoU {iou_sum / batches:.3f} ({time.time() - t0:.0f}s)",
            flush=True,
        )
    return model.eval()


# ---------------------------------------------------------------- export and check


def export(model: nn.Module, size: int, directory: Path, spec: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, size, size),),
        str(directory / "model.onnx"),
        input_names=["images"],
        output_names=["output0"],
        dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
        opset_version=13,
        do_constant_folding=True,
        dynamo=False,
    )
    (directory / "model.json").write_text(json.dumps(spec, indent=2) + "\n")
    size_kb = (directory / "model.onnx").stat().st_size / 1024
    print(f"exported {directory} ({size_kb:.0f} KiB)", flush=True)


def check_classifier(directory: Path, count: int) -> float:
    """Top-1 of the exported ONNX model on a held-out set, through the server's code."""
    import onnxruntime as ort

    bundle = read_bundle(directory)
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    data = generate(_cls_item, VAL_SEED, count)
    x = np.stack([d[0] for d in data]).astype(np.float32) / 255.0
    logits = session.run(None, {"images": x})[0]
    ranked = [[name for name, _ in classify(row, bundle.spec, 1)] for row in logits]
    return evaluate_classification([LABELS[d[1]] for d in data], ranked, LABELS).accuracy


def check_detector(directory: Path, count: int) -> str:
    """mAP@0.5 of the exported ONNX model on a held-out set, through the server's decoding + NMS."""
    import onnxruntime as ort

    from inferpack.vision.geometry import Transform

    bundle = read_bundle(directory)
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    data = generate(_det_item, VAL_SEED, count)
    x = np.stack([d[0] for d in data]).astype(np.float32) / 255.0
    out = np.concatenate([session.run(None, {"images": x[i : i + 32]})[0] for i in range(0, count, 32)])
    identity = Transform(0.0, 0.0, 1.0, 1.0, DET_SIZE, DET_SIZE)  # compare in model-input pixels
    predictions = [
        [
            Box(d.label, d.left, d.top, d.width, d.height, d.score)
            for d in detect(row, bundle.spec, identity, 0.05)
        ]
        for row in out
    ]
    truths = [[Box(LABELS[int(r[0])], r[1], r[2], r[3] - r[1], r[4] - r[2]) for r in d[1]] for d in data]
    report = evaluate_detection(truths, predictions, LABELS, threshold=bundle.spec.output.threshold)
    per_class = ", ".join(f"{k} {v.ap50:.4f}" for k, v in report.per_class.items() if v.ap50 is not None)
    return f"mAP@0.5 {report.map50:.4f}, mAP@[.5:.95] {report.map:.4f} ({per_class})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", choices=["classifier", "detector", "both"], default="both")
    parser.add_argument("--cls-epochs", type=int, default=12)
    parser.add_argument("--cls-count", type=int, default=4000)
    parser.add_argument("--det-epochs", type=int, default=14)
    parser.add_argument("--det-count", type=int, default=2500)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    started = time.time()
    if args.which in ("classifier", "both"):
        directory = demo_model_dir("shapes-classifier")
        model = train_classifier(args.cls_epochs, args.cls_count)
        export(
            model,
            CLS_SIZE,
            directory,
            bundle_json("classification", "shapes-classifier", CLS_SIZE, {"type": "logits"}),
        )
        print(f"classifier held-out top-1 (1000 images): {check_classifier(directory, 1000):.4f}", flush=True)
    if args.which in ("detector", "both"):
        directory = demo_model_dir("shapes-detector")
        model = train_detector(args.det_epochs, args.det_count)
        output = {
            "layout": "yolov8",
            "coordinates": "pixels",
            "iou_threshold": 0.45,
            "threshold": 0.3,
            "max_detections": 100,
        }
        export(model, DET_SIZE, directory, bundle_json("detection", "shapes-detector", DET_SIZE, output))
        print(f"detector held-out (500 scenes): {check_detector(directory, 500)}", flush=True)
    print(f"total {time.time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
