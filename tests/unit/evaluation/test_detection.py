"""Detection measures equal pycocotools' on the same boxes, to 1e-6, on synthetic cases."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.evaluation.references import class_ap, coco_eval

from inferpack.evaluation.detection import Box, evaluate_detection

CLASSES = ("cat", "dog", "bird", "fish")  # "fish" never appears: left out of the mean


def scene(rng: np.random.Generator, images: int) -> tuple[list[list[Box]], list[list[Box]]]:
    """Objects of every size range; detections that find them with jitter, miss some, add
    false ones and duplicates, and label some wrong; scores with ties."""
    truths: list[list[Box]] = []
    predictions: list[list[Box]] = []
    for _ in range(images):
        truth = []
        for _ in range(int(rng.integers(0, 7))):
            w, h = rng.choice([8.0, 20.0, 50.0, 120.0, 300.0]) * rng.uniform(0.5, 1.5, 2)
            truth.append(Box(str(rng.choice(CLASSES[:3])), *rng.uniform(0, 600, 2), w, h))
        found = []
        for box in truth:
            if rng.random() < 0.15:
                continue  # missed
            jitter = rng.normal(0, 0.12, 4) * [box.w, box.h, box.w, box.h]
            label = box.label if rng.random() > 0.1 else str(rng.choice(CLASSES[:3]))
            score = round(float(rng.uniform(0.05, 1.0)), 2)  # rounded: ties happen
            found.append(
                Box(
                    label,
                    box.x + jitter[0],
                    box.y + jitter[1],
                    abs(box.w + jitter[2]) + 1,
                    abs(box.h + jitter[3]) + 1,
                    score,
                )
            )
            if rng.random() < 0.1:
                found.append(Box(label, box.x, box.y, box.w, box.h, round(float(rng.uniform(0.05, 1.0)), 2)))
        for _ in range(int(rng.integers(0, 3))):
            found.append(
                Box(
                    str(rng.choice(CLASSES[:3])),
                    *rng.uniform(0, 600, 2),
                    *rng.uniform(5, 200, 2),
                    round(float(rng.uniform(0.05, 1)), 2),
                )
            )
        truths.append(truth)
        predictions.append(found)
    return truths, predictions


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equals_pycocotools(seed: int) -> None:
    truths, predictions = scene(np.random.default_rng(seed), 60)
    ours = evaluate_detection(truths, predictions, CLASSES, threshold=0.5)
    reference = coco_eval(truths, predictions, CLASSES)
    stats = reference.stats
    assert ours.map == pytest.approx(stats[0], abs=1e-6)
    assert ours.map50 == pytest.approx(stats[1], abs=1e-6)
    assert ours.map75 == pytest.approx(stats[2], abs=1e-6)
    assert ours.map_small == pytest.approx(stats[3], abs=1e-6)
    assert ours.map_medium == pytest.approx(stats[4], abs=1e-6)
    assert ours.map_large == pytest.approx(stats[5], abs=1e-6)
    assert ours.mar100 == pytest.approx(stats[8], abs=1e-6)
    for k, label in enumerate(CLASSES):
        measures = ours.per_class[label]
        assert measures.ap == pytest.approx(class_ap(reference, k), abs=1e-6)
        assert measures.ap50 == pytest.approx(class_ap(reference, k, 0), abs=1e-6)
        if measures.ap50 is not None:
            curve = reference.eval["precision"][0, :, k, 0, -1]
            assert np.allclose(measures.pr_curve, curve, atol=1e-6)
    assert ours.per_class["fish"].ap is None


def test_precision_and_recall_at_the_threshold_by_hand() -> None:
    truth = [[Box("cat", 0, 0, 10, 10), Box("cat", 20, 20, 10, 10), Box("dog", 40, 0, 10, 10)]]
    found = [
        [
            Box("cat", 0, 0, 10, 10, 0.9),  # TP
            Box("cat", 0, 0, 10, 10, 0.8),  # duplicate: FP
            Box("cat", 20, 20, 10, 10, 0.2),  # TP, but under the threshold
            Box("dog", 60, 60, 10, 10, 0.7),  # FP; the dog is missed
        ]
    ]
    ours = evaluate_detection(truth, found, ("cat", "dog"), threshold=0.5)
    cat = ours.per_class["cat"]
    assert (cat.detections, cat.true_positives, cat.ground_truths) == (2, 1, 2)
    assert (cat.precision, cat.recall) == (0.5, 0.5)
    assert (ours.precision, ours.recall) == (1 / 3, 1 / 3)
    assert ours.errors_per_image == [4]  # 2 false positives + 2 misses at the threshold
    assert ours.per_class["dog"].ap == 0.0


def test_perfect_detections() -> None:
    truth = [[Box("cat", 0, 0, 40, 40)], [Box("dog", 5, 5, 200, 100)]]
    found = [[Box("cat", 0, 0, 40, 40, 0.9)], [Box("dog", 5, 5, 200, 100, 0.6)]]
    ours = evaluate_detection(truth, found, ("cat", "dog"), threshold=0.5)
    assert ours.map == pytest.approx(1.0) and ours.map50 == pytest.approx(1.0)  # tp / (tp + fp + eps)
    assert ours.map_small == -1.0  # no object under 32x32 px: undefined, as pycocotools reports
