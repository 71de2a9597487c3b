"""One training run in a model folder: prepare, train, validate, checkpoint, export, evaluate.

The folder (``run_dir``) holds ``train.json`` (config.py), ``checkpoints/last.pt`` (every
``checkpoint_every`` steps and at each epoch end) and ``best.pt`` (the best validation
measure so far), ``bundle/`` (the best checkpoint as an inferpack bundle), ``progress.json``
and, once finished, ``report.json``: the bundle's measures on the validation split through
the server's own serving path. Running it again resumes from ``last.pt``: the step counter,
optimiser state and best measure carry on, and batches of a half-done epoch are skipped.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inferpack.fileio import write_atomic
from inferpack.training.augment import ClassificationAugment, DetectionAugment
from inferpack.training.checkpoint import load_checkpoint, save_checkpoint
from inferpack.training.config import TrainConfig
from inferpack.training.detection_loss import detector_loss
from inferpack.training.evaluate import evaluate_bundle, headline, measure
from inferpack.training.export import export_bundle, model_json, model_spec
from inferpack.training.layout import BEST, BUNDLE, LAST, REPORT_FILE, checkpoint_path
from inferpack.training.models import STRIDE, Architecture, build_model, load_weights, yolov8_layout
from inferpack.training.progress import ProgressWriter
from inferpack.training.samples import Prepared, input_spec, prepare_all, training_dataset

ARCHITECTURE: dict[str, Architecture] = {
    "classification": "mobilenet_v3_small",
    "detection": "mobilenet_v3_small-yolo",
}


def split(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: a fixed shuffle of the samples, the first share validates."""
    order = np.random.default_rng(seed).permutation(count).tolist()
    held = min(count - 1, max(1, round(count * fraction)))
    return sorted(order[held:]), sorted(order[:held])


def learning_rate(config: TrainConfig, step: int, max_steps: int) -> float:
    """Linear warm-up from a tenth over the first 5% of steps, then cosine down to 5%."""
    warm = max(1, min(100, max_steps // 20))
    if step < warm:
        return config.lr * (0.1 + 0.9 * step / warm)
    t = min(1.0, (step - warm) / max(1, max_steps - warm))
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


class Trainer:
    def __init__(self, run_dir: Path, config: TrainConfig) -> None:
        self.run_dir, self.config = run_dir, config
        dataset = training_dataset(Path(config.dataset), config.task)
        self.dataset, self.labels = dataset, dataset.classes
        self.side = config.input_side
        self.grid = (self.side // STRIDE, self.side // STRIDE)
        train_idx, val_idx = split(len(dataset.items), config.val_fraction, config.seed)
        self.val_items = [dataset.items[i] for i in val_idx]
        prepared = prepare_all(dataset, dataset.items, input_spec(self.side, self.side), config.threads)
        self.train_set = [prepared[i] for i in train_idx]
        self.val_set = [prepared[i] for i in val_idx]
        self.spec = model_spec(config.task, self.labels, self.side)
        self.architecture = ARCHITECTURE[config.task]
        self.device = torch.device(config.device)
        self.model = build_model(self.architecture, len(self.labels), self.side, self.side).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), config.lr, weight_decay=1e-4)
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        self.max_steps = config.final_epoch * self.steps_per_epoch
        self.step, self.best = 0, -1.0
        self.started = time.monotonic()
        self.augment_cls, self.augment_det = ClassificationAugment(), DetectionAugment()
        self.progress = ProgressWriter(
            run_dir,
            dataset=Path(config.dataset).name,
            max_steps=self.max_steps,
            final_epoch=config.final_epoch,
        )
        self._restore()

    # ------------------------------------------------------------ checkpoints

    def _restore(self) -> None:
        last = checkpoint_path(self.run_dir, LAST)
        if last.exists():
            state = load_checkpoint(last)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.best = int(state["step"]), float(state["best"])
        elif self.config.source:
            self._fine_tune_from(Path(self.config.source))

    def _fine_tune_from(self, source: Path) -> None:
        for which in (BEST, LAST):
            path = checkpoint_path(source, which)
            if path.exists():
                state = load_checkpoint(path)
                if state["architecture"] != self.architecture or int(state["side"]) != self.side:
                    raise ValueError(
                        f"source {source.name} is a {state['architecture']} at {state['side']} px; "
                        f"this run trains {self.architecture} at {self.side} px"
                    )
                load_weights(self.model, state["model"])
                return
        raise ValueError(f"source {source.name} has no training checkpoint to start from")

    def _payload(self, with_optimizer: bool) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "task": self.config.task,
            "labels": list(self.labels),
            "side": self.side,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if with_optimizer else {},
            "step": self.step,
            "best": self.best,
        }

    def save(self) -> None:
        save_checkpoint(checkpoint_path(self.run_dir, LAST), self._payload(True))

    # ------------------------------------------------------------ steps

    def _batch(self, items: list[Prepared]) -> tuple[Tensor, list[Any]]:
        if self.config.task == "classification":
            images = [self.augment_cls(torch.from_numpy(p.pixels)) for p in items]
            return self._input(torch.stack(images)), [p.label for p in items]
        pairs = [self.augment_det(torch.from_numpy(p.pixels), p.boxes) for p in items]
        return self._input(torch.stack([img for img, _ in pairs])), [boxes for _, boxes in pairs]

    def _input(self, pixels: Tensor) -> Tensor:
        return pixels.to(self.device).float() / 255.0

    def _loss(self, x: Tensor, targets: list[Any]) -> tuple[Tensor, float | None]:
        if self.config.task == "classification":
            labels = torch.tensor(targets, device=self.device)
            return F.cross_entropy(self.model(x), labels, label_smoothing=0.05), None
        xyxy, logits = self.model.raw(x)  # type: ignore[operator]
        loss, iou, _ = detector_loss(xyxy, logits, targets, self.grid, STRIDE)
        return loss, iou

    def train_step(self, items: list[Prepared]) -> tuple[float, float | None]:
        lr = learning_rate(self.config, self.step, self.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        total, ious = 0.0, []
        slices = np.array_split(np.arange(len(items)), min(self.config.subdivisions, len(items)))
        for part in slices:
            x, targets = self._batch([items[i] for i in part])
            loss, iou = self._loss(x, targets)
            (loss * len(part) / len(items)).backward()  # type: ignore[no-untyped-call]
            total += float(loss.detach()) * len(part) / len(items)
            if iou is not None:
                ious.append(iou)
        nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.optimizer.step()
        self.step += 1
        return total, (float(np.mean(ious)) if ious else None)

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Loss and the task's measure on the validation split, scored as the server answers."""
        self.model.eval()
        rows, losses, ious, box_losses = [], [], [], []
        for start in range(0, len(self.val_set), 32):
            items = self.val_set[start : start + 32]
            x = self._input(torch.from_numpy(np.stack([p.pixels for p in items])))
            if self.config.task == "classification":
                logits = self.model(x)
                losses.append(
                    float(F.cross_entropy(logits, torch.tensor([p.label for p in items]))) * len(items)
                )
                rows.extend(logits.numpy())
            else:
                xyxy, logits = self.model.raw(x)  # type: ignore[operator]
                boxes = [p.boxes for p in items]
                loss, iou, box = detector_loss(xyxy, logits, boxes, self.grid, STRIDE, iou_targets=False)
                box_losses.append(box * len(items))
                losses.append(float(loss) * len(items))
                ious.append(iou)
                rows.extend(yolov8_layout(xyxy, logits).cpu().numpy())
        self.model.train()
        measures = measure(self.spec, rows, [p.transform for p in self.val_set], self.val_items)
        measures["loss"] = sum(losses) / len(self.val_set)
        if ious:  # detection: the box term alone (GIoU loss) and the positives' IoU
            measures["iou"] = float(np.mean(ious))
            measures["box_loss"] = sum(box_losses) / len(self.val_set)
        return measures

    # ------------------------------------------------------------ the run

    def export(self) -> Path:
        spec = model_json(self.config.task, self.labels, self.side, self.config.name, "1.0.0")
        try:
            return export_bundle(self.model.cpu(), self.run_dir / BUNDLE, spec)
        finally:
            self.model.to(self.device)

    def _record(self, epoch: int, measures: dict[str, Any]) -> None:
        seconds = round(time.monotonic() - self.started, 1)  # of this process's run
        entry = {"epoch": epoch, "step": self.step, "seconds": seconds, **measures}
        history = [*self.progress.fields.get("history", []), entry]
        self.progress.update(
            True, epoch=epoch, validation=measures, iou=measures.get("iou"), history=history, best=self.best
        )
        figures = ", ".join(f"{k} {v:.4f}" for k, v in measures.items() if isinstance(v, float))
        line = f"epoch {epoch}/{self.config.final_epoch} step {self.step}: {figures}"
        print(line, file=sys.stderr, flush=True)

    def _end_epoch(self, epoch: int) -> None:
        measures = self.validate()
        score = headline(measures)
        if score > self.best or not (self.run_dir / BUNDLE).exists():
            self.best = score
            save_checkpoint(checkpoint_path(self.run_dir, BEST), self._payload(False))
            self.export()
        self.save()
        self._record(epoch, measures)

    def run(self) -> dict[str, Any]:
        self.model.train()
        self.started = started = time.monotonic()
        first_step = self.step
        self.progress.update(True, state="running", current_steps=self.step, pid=os.getpid())
        if self.step == 0:
            self.progress.fields["history"] = []
            self._record(0, self.validate())  # the untrained baseline the history starts from
        while self.step < self.max_steps:
            epoch, done = divmod(self.step, self.steps_per_epoch)
            order = torch.randperm(
                len(self.train_set),
                generator=torch.Generator().manual_seed(self.config.seed * 100_003 + epoch),
            )
            batches = torch.split(order, self.config.batch_size)[done:]
            for batch in batches:
                loss, iou = self.train_step([self.train_set[i] for i in batch.tolist()])
                if self.step % self.config.checkpoint_every == 0:
                    self.save()
                rate = (time.monotonic() - started) / (self.step - first_step)
                self.progress.update(
                    current_steps=self.step,
                    epoch=epoch + 1,
                    loss=loss,
                    lr=self.optimizer.param_groups[0]["lr"],
                    train_iou=iou,
                    eta_s=round(rate * (self.max_steps - self.step)),
                )
            self._end_epoch(epoch + 1)
        checkpoint = load_checkpoint(checkpoint_path(self.run_dir, BEST))
        report = {
            "architecture": self.architecture,
            "best_step": int(checkpoint["step"]),
            "validation": evaluate_bundle(
                self.run_dir / BUNDLE, self.dataset, self.val_items, self.config.threads
            ),
            "held_out": [item.path for item in self.val_items],
            "train_seconds": round(time.monotonic() - started, 1),
        }
        write_atomic(self.run_dir / REPORT_FILE, json.dumps(report, indent=2).encode())
        self.progress.update(True, state="done", current_steps=self.step, eta_s=0, report=report)
        return report
