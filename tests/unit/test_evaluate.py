"""VOC-style mAP and top-1 on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from inferpack.demo.evaluate import (
    Prediction,
    Truth,
    average_precision,
    class_average_precision,
    iou,
    mean_average_precision,
    top1_accuracy,
)

A = (0.0, 0.0, 10.0, 10.0)
B = (20.0, 20.0, 30.0, 30.0)
C = (40.0, 0.0, 50.0, 10.0)


def test_iou() -> None:
    assert iou(A, A) == 1.0
    assert iou(A, B) == 0.0
    assert iou(A, (5.0, 0.0, 15.0, 10.0)) == pytest.approx(50 / 150)
    assert iou(A, (10.0, 0.0, 20.0, 10.0)) == 0.0  # touching edges share no area


def test_top1() -> None:
    assert top1_accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 0.75
    with pytest.raises(ValueError):
        top1_accuracy(["a"], ["a", "b"])


def test_perfect_detections_score_one() -> None:
    truths = [[Truth("x", A), Truth("y", B)], [Truth("x", C)]]
    predictions = [[Prediction("x", 0.9, A), Prediction("y", 0.8, B)], [Prediction("x", 0.7, C)]]
    report = mean_average_precision(predictions, truths, ["x", "y"])
    assert report.mean_ap == 1.0
    assert report.ap == {"x": 1.0, "y": 1.0}


def test_known_partial_case() -> None:
    # 3 objects of one class. Ranked detections: TP, FP, TP, FP; one object never found.
    # recall:    1/3, 1/3, 2/3, 2/3;  precision: 1, 1/2, 2/3, 1/2
    # envelope:  1 at recall 1/3, 2/3 at recall 2/3, 0 beyond -> AP = 1/3*1 + 1/3*2/3 = 5/9
    truths = [[Truth("x", A), Truth("x", B)], [Truth("x", C)]]
    predictions = [
        [Prediction("x", 0.9, A), Prediction("x", 0.8, (60.0, 60.0, 70.0, 70.0))],
        [Prediction("x", 0.7, C), Prediction("x", 0.6, (0.0, 50.0, 10.0, 60.0))],
    ]
    assert class_average_precision(predictions, truths, "x") == pytest.approx(5 / 9)


def test_all_point_interpolation_by_hand() -> None:
    recall = np.array([0.25, 0.5, 0.5, 0.75])
    precision = np.array([1.0, 1.0, 2 / 3, 0.75])
    # envelope: 1 up to recall 0.5, 0.75 up to 0.75, 0 to 1 -> 0.5 + 0.25 * 0.75
    assert average_precision(recall, precision) == pytest.approx(0.6875)


def test_duplicates_are_false_positives() -> None:
    # The same object found twice: the second is a FP. recall 1, 1; precision 1, 1/2 -> AP 1
    # only because the duplicate ranks last; ranked first it costs half the AP.
    truths = [[Truth("x", A), Truth("x", B)]]
    late = [[Prediction("x", 0.9, A), Prediction("x", 0.8, B), Prediction("x", 0.7, A)]]
    assert class_average_precision(late, truths, "x") == pytest.approx(1.0)
    early = [[Prediction("x", 0.9, A), Prediction("x", 0.8, A), Prediction("x", 0.7, B)]]
    # TP, FP, TP: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3 -> 1/2 * 1 + 1/2 * 2/3
    assert class_average_precision(early, truths, "x") == pytest.approx(5 / 6)


def test_class_mismatch_is_a_miss_and_a_false_positive() -> None:
    truths = [[Truth("x", A), Truth("y", B)]]
    predictions = [[Prediction("y", 0.9, A), Prediction("y", 0.8, B)]]
    report = mean_average_precision(predictions, truths, ["x", "y", "z"])
    assert report.ap["x"] == 0.0  # its object was called "y"
    # "y": FP (on x's object) then TP: recall 0, 1; precision 0, 1/2 -> AP 1/2
    assert report.ap["y"] == pytest.approx(0.5)
    assert report.ap["z"] is None  # no ground truth: left out of the mean
    assert report.mean_ap == pytest.approx(0.25)


def test_low_overlap_is_a_false_positive() -> None:
    truths = [[Truth("x", A)]]
    shifted = (5.0, 0.0, 15.0, 10.0)  # IoU 1/3 < 0.5
    assert class_average_precision([[Prediction("x", 0.9, shifted)]], truths, "x") == 0.0
    assert class_average_precision([[Prediction("x", 0.9, shifted)]], truths, "x", 0.3) == 1.0


def test_a_box_on_two_objects_matches_the_better_one() -> None:
    left, right = (0.0, 0.0, 10.0, 10.0), (8.0, 0.0, 18.0, 10.0)
    truths = [[Truth("x", left), Truth("x", right)]]
    # The first box fits "right" best; the second then still has "left" to match.
    predictions = [
        [Prediction("x", 0.9, (7.0, 0.0, 17.0, 10.0)), Prediction("x", 0.8, (0.0, 0.0, 9.0, 10.0))]
    ]
    assert class_average_precision(predictions, truths, "x") == 1.0


def test_no_detections_at_all() -> None:
    report = mean_average_precision([[]], [[Truth("x", A)]], ["x"])
    assert report.mean_ap == 0.0
