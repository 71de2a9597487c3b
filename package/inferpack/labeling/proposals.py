"""A finished labeling task's proposals, in the seed's sample shape, kept beside its results:

<data>/jobs/<ID>/proposals.json   {"samples": [...]} written atomically once all images are done
<data>/jobs/<ID>/groups.json      an auto-grouping task's {"groups": [{group, size, members, ...}]}

A sample is an image of the dataset (``sample_id``: its path in the dataset). Its labels are
the model's proposals at the task's threshold (type 0: a class, type 1: a box given by its
corners in ``property["@modelarts:feature"]``); its metadata the hard-example verdict. An
auto-label task lists the hardest first, so a person reviews those before the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from inferpack.bundle import ModelSpec
from inferpack.datasets.items import Dataset
from inferpack.fileio import write_atomic
from inferpack.jobs.records import Job
from inferpack.labeling.grouping import features, group
from inferpack.labeling.hard import HARD_AT, Hardness, hardness

PROPOSALS_FILE = "proposals.json"
GROUPS_FILE = "groups.json"
CLASSIFICATION, DETECTION = 0, 1  # ModelArts' label types


def proposal_threshold(job: Job, spec: ModelSpec) -> float:
    return spec.output.threshold if job.threshold is None else job.threshold


def _labels(results: list[dict[str, Any]], task: str, threshold: float) -> list[dict[str, Any]]:
    if task == "classification":
        return [
            {"name": r["name"], "type": CLASSIFICATION, "score": r["score"], "property": {}}
            for r in results[:1]
        ]
    labels = []
    for r in results:
        if r["score"] < threshold:
            continue
        box = r["location"]
        corners = [[box["left"], box["top"]], [box["left"] + box["width"], box["top"] + box["height"]]]
        labels.append(
            {
                "name": r["name"],
                "type": DETECTION,
                "score": r["score"],
                "property": {"@modelarts:shape": "bndbox", "@modelarts:feature": corners},
            }
        )
    return labels


def _sample(
    dataset: Dataset, line: dict[str, Any], labels: list[dict[str, Any]], verdict: Hardness
) -> dict[str, Any]:
    item = dataset.items[int(line["index"])]
    labelled = item.label is not None or bool(item.boxes)
    return {
        "sample_id": item.path,
        "labels": labels,
        "metadata": {
            "@modelarts:hard": verdict.hard,
            "@modelarts:hard_coefficient": verdict.coefficient,
            "@modelarts:hard_reasons": list(verdict.reasons),
            "@modelarts:size": [line.get("width"), line.get("height"), 3],
        },
        "sample_status": "MANUAL_ANNOTATION" if labelled else "UN_ANNOTATION",
        **({"error": line["error"]} if "error" in line else {}),
    }


def write_proposals(
    home: Path, dataset: Dataset, lines: list[dict[str, Any]], spec: ModelSpec, job: Job
) -> dict[str, Any]:
    """Writes ``proposals.json``; returns the task's result counts."""
    lines = sorted(lines, key=lambda line: int(line["index"]))
    threshold = proposal_threshold(job, spec)
    verdicts = hardness(lines, spec.task, threshold, job.config)
    samples = [
        _sample(dataset, line, _labels(line.get("results", []), spec.task, threshold), verdict)
        for line, verdict in zip(lines, verdicts, strict=True)
    ]
    counts: dict[str, Any] = {
        "total_sample_count": len(samples),
        "annotated_sample_count": sum(bool(s["labels"]) for s in samples),
        "hard_sample_count": sum(v.coefficient >= HARD_AT for v in verdicts),
    }
    if job.config.get("task_type") == "auto-label":
        samples.sort(key=lambda s: -float(s["metadata"]["@modelarts:hard_coefficient"]))
    if job.config.get("task_type") == "auto-grouping":
        answered = [line for line in lines if "error" not in line]
        vectors = np.stack([features(line, spec.labels) for line in answered])
        ids = [dataset.items[int(line["index"])].path for line in answered]
        groups = group(ids, vectors, int(job.config.get("n_clusters", 3)))
        write_atomic(home / GROUPS_FILE, json.dumps({"groups": groups}).encode())
        counts["groups"] = [{k: g[k] for k in ("group", "size", "representatives")} for g in groups]
    write_atomic(home / PROPOSALS_FILE, json.dumps({"samples": samples}).encode())
    return counts


def _read(path: Path, key: str) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))[key]
    return entries


def read_proposals(home: Path) -> list[dict[str, Any]]:
    return _read(home / PROPOSALS_FILE, "samples")


def read_groups(home: Path) -> list[dict[str, Any]]:
    return _read(home / GROUPS_FILE, "groups")


def proposal_lines(lines: list[dict[str, Any]], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task's result lines of ``samples``, holding just what the proposals show (a
    classifier's top-1, a detector's boxes at the threshold), for the job exporters."""
    shown = {s["sample_id"]: {(x["name"], x["score"]) for x in s["labels"]} for s in samples}
    chosen = []
    for line in lines:
        if line["image"] not in shown:
            continue
        if "results" in line:
            kept = [r for r in line["results"] if (r["name"], r["score"]) in shown[line["image"]]]
            line = {**line, "results": kept}
        chosen.append(line)
    return chosen
