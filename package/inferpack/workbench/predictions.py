"""/yolo/predict jobs: each its own niced process writing ``predictions/KEY.json`` when done."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

from inferpack.fileio import write_atomic
from inferpack.workbench.state import Workbench

_sequence = itertools.count()


def new_key() -> str:
    """The seed's key is a timestamp (20201216173126); a sequence keeps two in one second apart."""
    return f"{time.strftime('%Y%m%d%H%M%S')}{next(_sequence) % 1000:03d}"


async def start_prediction(bench: Workbench, run_dir: Path, dataset: Path) -> str:
    key = new_key()
    out = bench.store.predictions / f"{key}.json"
    write_atomic(out, json.dumps({"done": False}).encode())
    process = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        str(bench.jobs.nice),
        sys.executable,
        "-m",
        "inferpack.training.predict",
        str(run_dir),
        str(dataset),
        str(out),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    bench.background.add(asyncio.get_running_loop().create_task(process.wait()))
    return key
