from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from inferpack.bundle import InputSpec, ModelSpec, OutputSpec
from inferpack.errors import BundleError, InternalError, InvalidArgument
from inferpack.vision.geometry import Transform, place
from inferpack.vision.postprocess import Detection, check_output_shape, classify, detect, nms

LABELS = ("a", "b", "c")


def model(
    task: str = "detection",
    labels: tuple[str, ...] = LABELS,
    width: int = 100,
    height: int = 100,
    **output: object,
) -> ModelSpec:
    return ModelSpec(
        task=task,  # type: ignore[arg-type]
        labels=labels,
        input=InputSpec(name=None, width=width, height=height),
        output=OutputSpec(**output),  # type: ignore[arg-type]
    )


IDENTITY = Transform.of(place(100, 100, 100, 100, "stretch"), 100, 100)


def yolov8(*anchors: tuple[float, ...]) -> np.ndarray:
    """Anchors as (cx, cy, w, h, score per class...) -> the [4+C, A] row."""
    return np.array(anchors, np.float32).T.copy()


# --- classification ---------------------------------------------------------------------


def test_softmax_of_logits_sorted_best_first() -> None:
    results = classify(np.array([1.0, 2.0, 3.0], np.float32), model("classification"), 6)
    e = np.exp([1.0, 2.0, 3.0])
    assert [name for name, _ in results] == ["c", "b", "a"]
    np.testing.assert_allclose([score for _, score in results], e[::-1] / e.sum(), rtol=1e-12)
    assert all(type(score) is float for _, score in results)


def test_softmax_is_stable_for_huge_logits() -> None:
    results = classify(np.array([1000.0, 1001.0, -1000.0], np.float32), model("classification"), 3)
    assert results[0][0] == "b" and math.isclose(results[0][1], 1 / (1 + math.exp(-1)))
    assert results[2] == ("c", 0.0)


def test_sigmoid_per_class_when_multi_label() -> None:
    spec = model("classification", multi_label=True)
    results = dict(classify(np.array([0.0, 2.0, -1000.0], np.float32), spec, 3))
    assert results["a"] == 0.5 and math.isclose(results["b"], 1 / (1 + math.exp(-2))) and results["c"] == 0.0


@pytest.mark.parametrize("multi_label", [False, True])
def test_probabilities_are_used_as_they_are(multi_label: bool) -> None:
    spec = model("classification", type="probabilities", multi_label=multi_label)
    results = classify(np.array([0.2, 0.5, 0.3], np.float32), spec, 6)
    assert [(n, round(s, 6)) for n, s in results] == [("b", 0.5), ("c", 0.3), ("a", 0.2)]


@pytest.mark.parametrize(("top_num", "count"), [(1, 1), (2, 2), (3, 3), (100, 3)])
def test_top_num(top_num: int, count: int) -> None:
    assert len(classify(np.zeros(3, np.float32), model("classification"), top_num)) == count


def test_ties_keep_label_order() -> None:
    assert [n for n, _ in classify(np.zeros(3, np.float32), model("classification"), 3)] == ["a", "b", "c"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_model_output_is_an_internal_error(value: float) -> None:
    with pytest.raises(InternalError, match="NaN or infinity"):
        classify(np.array([0.0, value, 1.0], np.float32), model("classification"), 3)


def test_classification_row_of_the_wrong_size_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="labels has 3 entries but the classification output has 4"):
        classify(np.zeros(4, np.float32), model("classification"), 3)


def test_top_num_below_one_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        classify(np.zeros(3, np.float32), model("classification"), 0)


# --- detection layouts ------------------------------------------------------------------


def test_yolov8_threshold_best_class_and_class_aware_nms() -> None:
    row = yolov8(
        (50, 50, 20, 10, 0.9, 0.1, 0.0),
        (52, 50, 20, 10, 0.8, 0.0, 0.0),  # same class, IoU 0.82: suppressed
        (52, 50, 20, 10, 0.0, 0.7, 0.0),  # same box, another class: kept
        (10, 10, 4, 4, 0.2, 0.1, 0.29),  # below the threshold
    )
    assert detect(row, model(), IDENTITY, 0.3) == [
        Detection("a", pytest.approx(0.9), 40, 45, 20, 10),  # type: ignore[arg-type]
        Detection("b", pytest.approx(0.7), 42, 45, 20, 10),  # type: ignore[arg-type]
    ]


def test_yolov5_scores_are_objectness_times_class_probability() -> None:
    row = np.array(
        [
            [50, 50, 20, 10, 0.9, 0.5, 0.9, 0.0],  # b: 0.81
            [20, 20, 10, 10, 0.5, 1.0, 0.0, 0.0],  # a: 0.5
            [80, 80, 10, 10, 0.9, 0.3, 0.2, 0.1],  # 0.27: under
            [80, 20, 10, 10, 0.2, 1.0, 1.0, 1.0],  # objectness under
        ],
        np.float32,
    )
    results = detect(row, model(layout="yolov5"), IDENTITY, 0.3)
    assert [(d.label, round(d.score, 6), d.left, d.top) for d in results] == [
        ("b", 0.81, 40, 45),
        ("a", 0.5, 15, 15),
    ]


def test_boxes_layout_skips_padding_and_invalid_classes_and_does_no_nms() -> None:
    row = np.array(
        [
            [10, 10, 30, 30, 0.6, 0],
            [11, 11, 31, 31, 0.9, 0],  # overlaps the first, same class: NMS was the graph's job
            [50, 50, 60, 70, 0.8, 2],
            [0, 0, 0, 0, 0.0, 0],  # padding
            [0, 0, 50, 50, 0.9, -1],
            [0, 0, 50, 50, 0.9, 3],
            [0, 0, 50, 50, 0.9, 1.5],
            [0, 0, 50, 50, 0.9, np.nan],
        ],
        np.float32,
    )
    results = detect(row, model(layout="boxes"), IDENTITY, 0.3)
    assert [(d.label, d.left, d.top, d.width, d.height) for d in results] == [
        ("a", 11, 11, 20, 20),
        ("c", 50, 50, 10, 20),
        ("a", 10, 10, 20, 20),
    ]


def test_normalized_coordinates_are_scaled_by_the_input_size() -> None:
    spec = model(width=200, height=100, coordinates="normalized")
    transform = Transform.of(place(200, 100, 200, 100, "stretch"), 400, 300)
    row = yolov8((0.5, 0.5, 0.1, 0.2, 0.9, 0.0, 0.0))
    # model input: cx 100, cy 50, w 20, h 20 -> original: x * 2, y * 3
    assert detect(row, spec, transform, 0.3) == [Detection("a", pytest.approx(0.9), 180, 120, 40, 60)]  # type: ignore[arg-type]


def test_letterboxed_boxes_come_back_in_original_pixels_clipped_or_dropped() -> None:
    spec = model(width=320, height=320)
    transform = Transform.of(place(640, 360, 320, 320, "letterbox"), 640, 360)  # 320x180 at top 70
    row = yolov8(
        (150, 125, 100, 50, 0.9, 0, 0),  # model 100..200 x 100..150 -> 200..400 x 60..160
        (300, 100, 60, 20, 0, 0.8, 0),  # 270..330 x 90..110: clipped at x = 640
        (100, 30, 40, 40, 0, 0, 0.7),  # entirely in the top padding: dropped
        (60, 200, 0.2, 30, 0.6, 0, 0),  # 0.4 px wide once mapped: dropped
    )
    results = detect(row, spec, transform, 0.3)
    assert [(d.label, d.left, d.top, d.width, d.height) for d in results] == [
        ("a", 200, 60, 200, 100),
        ("b", 540, 40, 100, 40),
    ]


def test_non_finite_boxes_and_scores_are_dropped_without_warnings() -> None:
    row = yolov8(
        (np.nan, 50, 10, 10, 0.9, 0, 0),
        (50, 50, np.inf, 10, 0.9, 0, 0),
        (50, 50, 10, 10, np.nan, 0, 0),
        (20, 20, 10, 10, 0.5, 0, 0),
    )
    assert [(d.left, d.top) for d in detect(row, model(), IDENTITY, 0.3)] == [(15, 15)]


def test_max_detections_keeps_the_best() -> None:
    row = yolov8(*[(10 + 20 * i, 50, 10, 10, 0.5 + 0.1 * i, 0, 0) for i in range(5)])
    results = detect(row, model(max_detections=3), IDENTITY, 0.3)
    assert [round(d.score, 6) for d in results] == [0.9, 0.8, 0.7]


def test_threshold_is_inclusive_and_empty_output_is_fine() -> None:
    row = yolov8((50, 50, 10, 10, 0.5, 0, 0))
    assert len(detect(row, model(), IDENTITY, 0.5)) == 1
    assert detect(np.zeros((7, 0), np.float32), model(), IDENTITY, 0.0) == []


def test_half_precision_output_is_accepted() -> None:
    row = yolov8((50, 50, 10, 10, 0.9, 0, 0)).astype(np.float16)
    assert [d.left for d in detect(row, model(), IDENTITY, 0.3)] == [45]


def test_detection_row_of_the_wrong_shape_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="the yolov8 output has 8 rows; expected 4\\+3"):
        detect(np.zeros((8, 10), np.float32), model(), IDENTITY, 0.3)


# --- NMS --------------------------------------------------------------------------------


def test_nms_suppresses_overlaps_of_the_same_class_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 60]], np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0], np.intp)
    assert nms(boxes, scores, classes, 0.45, 100).tolist() == [0, 2, 3]


@pytest.mark.parametrize(("iou_threshold", "kept"), [(0.5, [0, 1]), (0.49, [0])])
def test_nms_keeps_a_box_whose_iou_equals_the_threshold(iou_threshold: float, kept: list[int]) -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float64)  # IoU exactly 0.5
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, np.zeros(2, np.intp), iou_threshold, 100).tolist() == kept


def test_nms_orders_by_score_and_stops_at_the_limit() -> None:
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(5)], np.float64)
    scores = np.array([0.1, 0.5, 0.3, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, np.zeros(5, np.intp), 0.45, 3).tolist() == [3, 4, 1]


# --- output shape checks at model load ----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (model("classification"), (3,)),
        (model("classification"), (None,)),
        (model(), (7, 8400)),
        (model(), ("boxes", "anchors")),
        (model(layout="yolov5"), (25200, 8)),
        (model(layout="boxes"), (100, 6)),
        (model(layout="boxes"), (None, 6)),
    ],
)
def test_output_shapes_that_fit(spec: ModelSpec, shape: tuple[int | str | None, ...]) -> None:
    check_output_shape(shape, spec)


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    [
        (model("classification"), (4,), "labels has 3 entries but the classification output has 4 classes"),
        (model("classification"), (3, 1), "must be [N, classes], got [N, 3, 1]"),
        (model(), (9, 8400), "labels has 3 entries but the yolov8 output has 9 rows; expected 4+3"),
        (model(), (7, 8400, 1), "a yolov8 output must be [N, 4+C, A]"),
        (model(layout="yolov5"), (25200, 9), "the yolov5 output has 9 columns; expected 5+3"),
        (model(layout="boxes"), (100, 7), "a boxes output has 6 columns"),
        (model(layout="ssd"), (100, 6), "unknown detection layout 'ssd'"),
    ],
)
def test_output_shapes_that_do_not_fit_name_the_problem(
    spec: ModelSpec, shape: tuple[int | str | None, ...], message: str
) -> None:
    with pytest.raises(BundleError) as caught:
        check_output_shape(shape, spec)
    assert message in str(caught.value)


# --- properties -------------------------------------------------------------------------


SHAPES = {"yolov8": (7, 16), "yolov5": (16, 8), "boxes": (16, 6)}
VALUES = st.floats(-1e3, 1e3, width=32) | st.integers(0, 3).map(float) | st.floats(width=32)


@settings(max_examples=300, deadline=2000)
@given(
    layout=st.sampled_from(sorted(SHAPES)),
    data=st.data(),
    original=st.tuples(st.integers(15, 4096), st.integers(15, 4096)),
    letterbox=st.booleans(),
    threshold=st.floats(0, 1),
)
def test_detections_always_lie_inside_the_image(
    layout: str, data: st.DataObject, original: tuple[int, int], letterbox: bool, threshold: float
) -> None:
    row = data.draw(arrays(np.float32, SHAPES[layout], elements=VALUES))
    spec = model(width=320, height=320, layout=layout, max_detections=20)
    transform = Transform.of(place(*original, 320, 320, "letterbox" if letterbox else "stretch"), *original)
    results = detect(row, spec, transform, threshold)
    assert len(results) <= 20
    assert [d.score for d in results] == sorted((d.score for d in results), reverse=True)
    for d in results:
        assert math.isfinite(d.score) and d.score >= threshold and d.label in LABELS
        assert d.width >= 1 and d.height >= 1
        assert d.left >= 0 and d.left + d.width <= original[0]
        assert d.top >= 0 and d.top + d.height <= original[1]
