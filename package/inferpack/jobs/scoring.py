"""An evaluate job's results against its dataset's truth -> report.json and report.html.

Images whose result is an error (unreadable, outside the limits) are left out of the measures
and listed in the report. Detection results are scored in each image's own pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from inferpack.datasets.items import Dataset, Item
from inferpack.evaluation.classification import evaluate_classification
from inferpack.evaluation.detection import RECALL_POINTS, Box, evaluate_detection, truth_boxes
from inferpack.evaluation.html import confusion_table, figures, pr_curves_svg, render_page, table
from inferpack.evaluation.pictures import annotated_data_uri

WORST_IMAGES = 8
EVALUATION_FLOOR = 0.05  # detections kept for AP: the low-scoring ones shape the PR curve


def result_boxes(results: Sequence[dict[str, Any]]) -> list[Box]:
    return [
        Box(
            r["name"],
            r["location"]["left"],
            r["location"]["top"],
            r["location"]["width"],
            r["location"]["height"],
            r["score"],
        )
        for r in results
    ]


def score(
    dataset: Dataset, lines: Sequence[dict[str, Any]], labels: Sequence[str], threshold: float, title: str
) -> tuple[dict[str, Any], str]:
    """``lines``: the job's result lines (any order). Returns report.json's content and report.html."""
    by_index = {int(line["index"]): line for line in lines}
    scored = [(dataset.items[i], by_index[i]) for i in sorted(by_index) if "error" not in by_index[i]]
    failed = [
        {"image": line["image"], "error": line["error"]}
        for _, line in sorted(by_index.items())
        if "error" in line
    ]
    if not scored:
        raise ValueError("no image of the dataset could be predicted: nothing to evaluate")
    report: dict[str, Any] = {
        "title": title,
        "dataset": {"format": dataset.format, "classes": list(dataset.classes), "images": len(dataset.items)},
        "evaluated": len(scored),
        "image_errors": failed,
    }
    if dataset.task == "classification":
        sections = _classification(dataset, scored, labels, report)
    else:
        sections = _detection(dataset, scored, labels, threshold, report)
    summary = {"images evaluated": len(scored), "images with errors": len(failed), **report["measures"]}
    return report, render_page(title, summary, sections)


def _classification(
    dataset: Dataset, scored: list[tuple[Item, dict[str, Any]]], labels: Sequence[str], report: dict[str, Any]
) -> list[tuple[str, str]]:
    truth = [item.label or "" for item, _ in scored]
    ranked = [[r["name"] for r in line["results"]] for _, line in scored]
    measures = evaluate_classification(truth, ranked, labels, ks=(1, 5))
    report["measures"] = {
        "accuracy": measures.accuracy,
        **{f"top{k}_accuracy": value for k, value in measures.top_k.items()},
        "macro_f1": measures.macro_f1,
        "micro_f1": measures.micro_f1,
        "mcc": measures.mcc,
    }
    report["per_class"] = {name: asdict(scores) for name, scores in measures.per_class.items()}
    report["confusion"] = {"classes": measures.classes, "matrix": measures.confusion}
    wrong = [
        (line["results"][0]["score"] if line["results"] else 0.0, item, line)
        for item, line in scored
        if not line["results"] or line["results"][0]["name"] != item.label
    ]
    wrong.sort(key=lambda entry: -entry[0])
    worst = [
        {"image": item.path, "truth": item.label, "predicted": line["results"][:3]}
        for _, item, line in wrong[:WORST_IMAGES]
    ]
    report["worst"] = worst
    pictures = [
        (
            annotated_data_uri((dataset.root / w["image"]).read_bytes(), [], []),
            f"{w['image']}: true {w['truth']}, predicted "
            + ", ".join(f"{p['name']} {p['score']:.2f}" for p in w["predicted"]),
        )
        for w in worst
    ]
    rows = [[name, s.precision, s.recall, s.f1, s.support] for name, s in measures.per_class.items()]
    return [
        ("Per class", table(["class", "precision", "recall", "F1", "images"], rows)),
        ("Confusion matrix", confusion_table(measures.classes, measures.confusion)),
        ("Most confident mistakes", figures(pictures) or "<p>none</p>"),
    ]


def _detection(
    dataset: Dataset,
    scored: list[tuple[Item, dict[str, Any]]],
    labels: Sequence[str],
    threshold: float,
    report: dict[str, Any],
) -> list[tuple[str, str]]:
    truths = [truth_boxes(item.boxes or (), line["width"], line["height"]) for item, line in scored]
    found = [result_boxes(line["results"]) for _, line in scored]
    classes = list(labels) + [c for c in dataset.classes if c not in labels]
    measures = evaluate_detection(truths, found, classes, threshold)
    report["measures"] = {
        "mAP@0.5": measures.map50,
        "mAP@[.5:.95]": measures.map,
        "mAP@0.75": measures.map75,
        "mAP small": measures.map_small,
        "mAP medium": measures.map_medium,
        "mAP large": measures.map_large,
        "AR@100": measures.mar100,
        f"precision@{threshold:g}": measures.precision,
        f"recall@{threshold:g}": measures.recall,
    }
    report["per_class"] = {name: asdict(m) for name, m in measures.per_class.items()}
    report["pr_curves"] = {"iou": 0.5, "recall": RECALL_POINTS.tolist()}
    order = sorted(range(len(scored)), key=lambda i: -measures.errors_per_image[i])
    chosen = [i for i in order if measures.errors_per_image[i] > 0][:WORST_IMAGES]
    report["worst"] = [{"image": scored[i][0].path, "errors": measures.errors_per_image[i]} for i in chosen]
    pictures = []
    for i in chosen:
        item = scored[i][0]
        kept = [box for box in found[i] if box.score >= threshold]
        uri = annotated_data_uri((dataset.root / item.path).read_bytes(), truths[i], kept)
        pictures.append(
            (uri, f"{item.path}: {measures.errors_per_image[i]} errors (green: truth, red: predicted)")
        )
    rows = [
        [name, m.ap50, m.ap, m.precision, m.recall, m.ground_truths, m.detections]
        for name, m in measures.per_class.items()
    ]
    curves = {name: m.pr_curve for name, m in measures.per_class.items() if m.pr_curve}
    header = [
        "class",
        "AP@0.5",
        "AP@[.5:.95]",
        f"P@{threshold:g}",
        f"R@{threshold:g}",
        "objects",
        "detections",
    ]
    return [
        ("Per class", table(header, rows)),
        ("Precision / recall (IoU 0.5)", pr_curves_svg(curves, RECALL_POINTS.tolist())),
        ("Images with the most errors", figures(pictures) or "<p>none</p>"),
    ]


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """The headline measures kept in job.json (the CLI's table)."""
    return {key: round(value, 6) for key, value in report["measures"].items()}


def report_paths(job_home: Path) -> tuple[Path, Path]:
    return job_home / "report.json", job_home / "report.html"
