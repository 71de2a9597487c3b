"""``inferpack workbench --root DIR --port P``: the training workbench in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from inferpack.logs import setup_logging

KEY_VARIABLE = "INFERPACK_WORKBENCH_KEY"


def add_workbench_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("workbench", help="serve the training workbench (the seed's /yolo/* API)")
    bench.add_argument("--root", type=Path, required=True, help="holds datasets/, models/, predictions/")
    bench.add_argument("--port", type=int, default=8000)
    bench.add_argument("--host", default="127.0.0.1")
    bench.add_argument("--access-key", help=f"the key clients send (default: ${KEY_VARIABLE})")
    bench.add_argument("--max-jobs", type=int, default=1, help="training jobs at once; the rest queue")
    bench.add_argument("--threads", type=int, default=1, help="CPU threads per training job")
    bench.add_argument("--nice", type=int, default=10, help="niceness of the job processes")
    bench.add_argument("--epochs", type=int, default=10, help="final_epoch when a request sends none")
    bench.add_argument("--log-level", default="INFO")
    bench.set_defaults(handler=_workbench)


def _workbench(args: argparse.Namespace) -> int:
    key = args.access_key or os.environ.get(KEY_VARIABLE, "")
    if len(key) < 8:
        raise ValueError(f"give an access key of at least 8 characters (--access-key or ${KEY_VARIABLE})")
    setup_logging(args.log_level)
    from inferpack.workbench.app import WorkbenchConfig, serve

    config = WorkbenchConfig(
        root=args.root,
        access_key=key,
        host=args.host,
        port=args.port,
        max_jobs=args.max_jobs,
        threads=args.threads,
        nice=args.nice,
        default_epochs=args.epochs,
    )
    print(f"inferpack workbench: http://{args.host}:{args.port}/yolo/ (root {args.root})", file=sys.stderr)
    return asyncio.run(serve(config))
