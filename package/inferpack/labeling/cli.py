"""``python3 install.py label NAME DATASET``: a labeling task on an installed service, written
into its data folder as the job verbs do, followed, then summed up: counts, the hard examples
(``--hard-only``), and an export of the proposals for a labeling tool (``--export``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from inferpack.datasets.store import DatasetStore
from inferpack.jobs.cli import _errors, _follow, _hand_over, _layout, add_job_options
from inferpack.jobs.exports import EXPORT_FORMATS, SUFFIXES, check_format, export
from inferpack.jobs.store import JobStore
from inferpack.labeling.hard import REASONS
from inferpack.labeling.proposals import PROPOSALS_FILE, proposal_lines, read_proposals
from inferpack.labeling.tasks import TASK_TYPES, task_config


@_errors
def _label(args: argparse.Namespace) -> int:
    layout = _layout(args)
    jobs, datasets = JobStore(layout.data_dir), DatasetStore(layout.data_dir)
    fields = {"task_type": args.task, "config": {"n_clusters": args.n_clusters}}
    if args.confidence_scope is not None:
        fields["config"]["confidence_scope"] = args.confidence_scope
    job = jobs.create("label", args.dataset, datasets, args.threshold, task_config(fields))
    _hand_over(jobs.home(job.id), layout)
    print(job.id)
    if args.no_wait:
        return 0
    job = _follow(jobs, job)
    if job.state != "done":
        print(f"task {job.id} {job.state}" + (f": {job.reason}" if job.reason else ""))
        return 1
    for name in ("total_sample_count", "annotated_sample_count", "hard_sample_count"):
        print(f"{name:<24} {job.summary[name]}")
    for group in job.summary.get("groups", []):
        print(
            f"group {group['group']:<3} {group['size']:>6} images, e.g. {', '.join(group['representatives'])}"
        )
    samples = read_proposals(jobs.home(job.id))
    if args.hard_only:
        samples = [s for s in samples if s["metadata"]["@modelarts:hard"]]
        for sample in sorted(samples, key=lambda s: -s["metadata"]["@modelarts:hard_coefficient"]):
            reasons = "; ".join(REASONS[r] for r in sample["metadata"]["@modelarts:hard_reasons"])
            coefficient = sample["metadata"]["@modelarts:hard_coefficient"]
            print(f"hard {coefficient:.2f} {sample['sample_id']}: {reasons}")
    print(f"proposals: {jobs.home(job.id) / PROPOSALS_FILE}")
    if args.export is not None:
        boxes = any(label["type"] == 1 for s in samples for label in s["labels"])
        task = "detection" if boxes else "classification"
        fmt = check_format(args.export, task)
        dest = args.out or jobs.home(job.id) / f"proposals-{fmt}{SUFFIXES[fmt]}"
        lines = proposal_lines(jobs.results(job.id).read(), samples)
        dataset = datasets.open(job.dataset)
        export(fmt, lines, dataset, dataset.classes, task, Path(dest))
        print(f"export: {dest}")
    return 0


def add_label_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "label", help="pre-label a service's dataset with its model: proposals, hard examples, groups"
    )
    parser.add_argument("name")
    parser.add_argument("dataset")
    parser.add_argument("--task", choices=TASK_TYPES, default="pre-label")
    parser.add_argument("--hard-only", action="store_true", help="list the hard examples, hardest first")
    parser.add_argument("--confidence-scope", help='top scores that make an image hard, e.g. "0.0-0.5"')
    parser.add_argument("--n-clusters", type=int, default=3, help="auto-grouping: how many groups")
    parser.add_argument("--export", choices=EXPORT_FORMATS, help="write the proposals in this format")
    parser.add_argument("--out", type=Path, help="where --export writes (default: the task's folder)")
    parser.add_argument("--work-root", type=Path, help="default $INFERPACK_WORK_ROOT or /opt/inferpack/work")
    add_job_options(parser)
    parser.set_defaults(handler=_label)
