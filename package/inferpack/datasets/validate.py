"""``/validate``: every problem of a dataset, each with its file (and line), found with the
server's own decoder and limits, so a dataset that validates is one the API would accept
image by image.

Checked on top of what reading found (``readers``): each image's size against the API's
limit, its format and dimensions, that it decodes in full; duplicate images (same bytes);
and, given the model's labels, classes the model does not know (mapped by name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from inferpack.datasets.items import Dataset, Problem
from inferpack.errors import InferpackError
from inferpack.vision.decode import decode_image
from inferpack.vision.limits import DEFAULT_LIMITS, ImageLimits

MAX_LISTED = 200  # problems spelled out in the message; the report keeps them all


@dataclass(frozen=True)
class ValidationReport:
    dataset: Dataset
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not self.problems

    def message(self) -> str:
        summary = f"{len(self.dataset.items)} images, {self.dataset.format} layout" + (
            f", classes: {', '.join(self.dataset.classes)}" if self.dataset.classes else ""
        )
        if self.valid:
            return f"valid: {summary}"
        listed = [str(p) for p in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            listed.append(f"... and {len(self.problems) - MAX_LISTED} more")
        return f"{len(self.problems)} problems ({summary}):\n" + "\n".join(listed)


def image_problem(data: bytes, limits: ImageLimits) -> str | None:
    """Why the API would refuse this image file, or None when it would take it."""
    raw_limit = limits.max_base64_bytes * 3 // 4  # what 4 MiB of base64 carries
    if len(data) > raw_limit:
        return f"image is {len(data)} bytes, over the API's limit of {raw_limit}"
    try:
        decode_image(data, limits)
    except InferpackError as exc:
        return exc.error_msg
    return None


def label_problems(classes: Sequence[str], model_labels: Sequence[str], where: str) -> list[Problem]:
    """Dataset classes the model does not have, mapped by name (order may differ)."""
    unknown = [c for c in classes if c not in model_labels]
    if not unknown:
        return []
    unused = [label for label in model_labels if label not in classes]
    return [
        Problem(
            where,
            None,
            f"classes the model does not know: {', '.join(unknown)} "
            f"(model labels: {', '.join(model_labels)}; not in the dataset: {', '.join(unused) or 'none'})",
        )
    ]


def validate(
    dataset: Dataset, limits: ImageLimits = DEFAULT_LIMITS, model_labels: Sequence[str] | None = None
) -> ValidationReport:
    problems = list(dataset.problems)
    if not dataset.items and not problems:
        problems.append(Problem(".", None, "holds no images"))
    seen: dict[str, str] = {}
    for item in dataset.items:
        data = (dataset.root / item.path).read_bytes()
        if (reason := image_problem(data, limits)) is not None:
            problems.append(Problem(item.path, None, reason))
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            problems.append(Problem(item.path, None, f"duplicate image: same bytes as {seen[digest]}"))
        else:
            seen[digest] = item.path
    if model_labels is not None:
        where = "property.json" if dataset.format == "yolo" else "."
        problems.extend(label_problems(dataset.classes, model_labels, where))
    return ValidationReport(dataset, tuple(sorted(problems, key=lambda p: (p.file, p.line or 0))))
