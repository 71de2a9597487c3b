"""The operator's data verbs, on an installed service's data folder (``state/data``):

    python3 install.py key NAME                          make (or rotate) the API key
    python3 install.py dataset import NAME DIR|ARCHIVE [--id ID]
    python3 install.py dataset list|show|delete NAME [ID]
    python3 install.py predict|evaluate NAME DATASET     queue a job, follow it, print the outcome

Jobs are written into the data folder, where the running service picks them up within a
second; so these verbs work the same for the Docker and the process runtime. Files made here
as root are handed to the folder's owner (the container's user).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from inferpack.apikeys import create_key
from inferpack.cli_errors import one_line_errors
from inferpack.datasets.store import DatasetStore
from inferpack.datasets.validate import validate
from inferpack.deploy.layout import ServiceLayout, work_root
from inferpack.errors import Conflict, InferpackError
from inferpack.jobs.records import Job
from inferpack.jobs.runner import view
from inferpack.jobs.scoring import report_paths
from inferpack.jobs.store import JobStore

_errors = one_line_errors((InferpackError, LookupError, ValueError, OSError))
_QUEUED_NOTE_S = 10.0


def _layout(args: argparse.Namespace) -> ServiceLayout:
    layout = ServiceLayout(work_root(args.work_root), args.name)
    if not layout.state_dir.is_dir():
        raise LookupError(f"no service {args.name} is installed under {layout.root}")
    return layout


def _hand_over(path: Path, layout: ServiceLayout) -> None:
    """Root made ``path``: give it (and what is inside) to whoever owns the state folder."""
    owner = layout.state_dir.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    for folder, _, files in os.walk(path):
        os.chown(folder, owner.st_uid, owner.st_gid)
        for name in files:
            os.chown(Path(folder) / name, owner.st_uid, owner.st_gid)


@_errors
def _key(args: argparse.Namespace) -> int:
    layout = _layout(args)
    key = create_key(layout.data_dir)
    _hand_over(layout.data_dir, layout)
    print(key)
    print(
        f"the API key of {args.name} (shown once; any earlier key stops working now). Use it as",
        file=sys.stderr,
    )
    print("  Authorization: Bearer KEY   or the seed's access_key=KEY field", file=sys.stderr)
    return 0


@_errors
def _import(args: argparse.Namespace) -> int:
    layout = _layout(args)
    store = DatasetStore(layout.data_dir)
    source: Path = args.source
    dataset_id = args.id or source.name.split(".")[0]
    info = (
        store.import_archive(source, dataset_id)
        if source.is_file()
        else store.import_folder(source, dataset_id)
    )
    _hand_over(store.folder / dataset_id, layout)
    print(f"dataset {info.id}: {info.images} images, {info.format} layout, {info.bytes / 2**20:.1f} MiB")
    print(validate(store.open(info.id)).message())
    return 0


@_errors
def _list_datasets(args: argparse.Namespace) -> int:
    infos = DatasetStore(_layout(args).data_dir).all()
    print(f"{'ID':<24} {'FORMAT':<8} {'IMAGES':>7}  CLASSES")
    for info in infos:
        print(f"{info.id:<24} {info.format:<8} {info.images:>7}  {', '.join(info.classes) or '-'}")
    return 0


@_errors
def _show_dataset(args: argparse.Namespace) -> int:
    store = DatasetStore(_layout(args).data_dir)
    info = store.info(args.id)
    task = info.task or "none (unlabelled)"
    print(f"dataset {info.id}: {info.images} images, {info.format} layout, task {task}")
    report = validate(store.open(args.id))
    print(report.message())
    return 0 if report.valid else 1


@_errors
def _delete_dataset(args: argparse.Namespace) -> int:
    layout = _layout(args)
    users = JobStore(layout.data_dir).uses(args.id)
    if users:
        raise Conflict(f"jobs {', '.join(users)} still read dataset {args.id}: cancel them first")
    DatasetStore(layout.data_dir).delete(args.id)
    print(f"dataset {args.id} deleted")
    return 0


def _follow(jobs: JobStore, job: Job) -> Job:
    started = time.monotonic()
    noted = False
    while not job.finished_state:
        time.sleep(0.5)
        job = jobs.get(job.id)
        progress = view(job, None, jobs.home(job.id))["progress"]
        print(
            f"\r{job.state}: {job.done}/{job.total} images ({progress['percent']}%)", end="", file=sys.stderr
        )
        if job.state == "queued" and not noted and time.monotonic() - started > _QUEUED_NOTE_S:
            print(
                "\nstill queued: the service runs it when it is up and done with earlier jobs",
                file=sys.stderr,
            )
            noted = True
    print(file=sys.stderr)
    return job


def _outcome(jobs: JobStore, job: Job) -> int:
    if job.state != "done":
        print(f"job {job.id} {job.state}" + (f": {job.reason}" if job.reason else ""))
        return 1
    print(f"{'images':<16} {job.total}")
    print(f"{'image errors':<16} {job.errors}")
    for name, value in job.summary.items():
        print(f"{name:<16} {value:.4f}")
    report_json, report_html = report_paths(jobs.home(job.id))
    if report_html.is_file():
        print(f"report: {report_html} (and {report_json.name})")
    print(f"results: {jobs.results(job.id).path}")
    return 0


@_errors
def _job(args: argparse.Namespace) -> int:
    layout = _layout(args)
    data = layout.data_dir
    jobs = JobStore(data)
    job = jobs.create(args.command, args.dataset, DatasetStore(data), args.threshold)
    _hand_over(jobs.home(job.id), layout)
    print(job.id)
    if args.no_wait:
        return 0
    return _outcome(jobs, _follow(jobs, job))


def add_data_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--work-root", type=Path, help="default $INFERPACK_WORK_ROOT or /opt/inferpack/work"
        )
        return parser

    key = common(
        subparsers.add_parser("key", help="make (or rotate) a service's API key for its data routes")
    )
    key.add_argument("name")
    key.set_defaults(handler=_key)

    dataset = subparsers.add_parser("dataset", help="datasets in a service's data folder")
    verbs = dataset.add_subparsers(dest="verb", required=True)
    imported = common(
        verbs.add_parser("import", help="copy a folder (or unpack a .zip/.tar.gz) into the service")
    )
    imported.add_argument("name")
    imported.add_argument("source", type=Path)
    imported.add_argument("--id", help="dataset id (default: the folder's name)")
    imported.set_defaults(handler=_import)
    listed = common(verbs.add_parser("list", help="the service's datasets"))
    listed.add_argument("name")
    listed.set_defaults(handler=_list_datasets)
    for verb, handler, text in (
        ("show", _show_dataset, "a dataset and its problems"),
        ("delete", _delete_dataset, "delete a dataset"),
    ):
        parser = common(verbs.add_parser(verb, help=text))
        parser.add_argument("name")
        parser.add_argument("id")
        parser.set_defaults(handler=handler)

    evaluate = common(
        subparsers.add_parser("evaluate", help="evaluate a service's model on a labelled dataset")
    )
    evaluate.add_argument("name")
    evaluate.add_argument("dataset")
    add_job_options(evaluate)
    evaluate.set_defaults(handler=_job)


def add_job_options(parser: argparse.ArgumentParser, threshold: bool = True) -> None:
    parser.add_argument("--no-wait", action="store_true", help="print the job id and return")
    if threshold:
        parser.add_argument(
            "--threshold", type=float, help="detection: P/R at this score (default: the model's)"
        )


def extend_predict(parser: argparse.ArgumentParser) -> None:
    """``predict`` sends images to a URL (inferpack.client); given a service NAME and a DATASET
    instead, it queues a predict job there."""
    parser.description = "predict URL IMAGE...: send images; predict NAME DATASET: a job over a dataset"
    parser.add_argument(
        "--work-root", type=Path, help="jobs: default $INFERPACK_WORK_ROOT or /opt/inferpack/work"
    )
    add_job_options(parser, threshold=False)  # the client's --threshold serves both
    client = parser.get_default("handler")
    parser.set_defaults(handler=lambda args: client(args) if "://" in args.url else _predict_job(args))


def _predict_job(args: argparse.Namespace) -> int:
    if len(args.images) != 1:
        print("inferpack predict: a job takes: predict NAME DATASET", file=sys.stderr)
        return 1
    args.name, args.dataset = args.url, str(args.images[0])
    return _job(args)
