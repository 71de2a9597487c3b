"""Jobs through the operator's CLI and a real ``inferpack serve`` process on a service's state
folder: a SIGKILLed server resumes its job after the restart, with no image lost or twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from inferpack.demo import demo_model_dir
from inferpack.demo.datasets import detection_dataset
from inferpack.jobs.store import JobStore
from tests.integration.test_serve_process import free_port, wait_ready


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferpack", *args], capture_output=True, text=True, timeout=300
    )


def serve(state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The demo detector's server on the service's state folder, its output in ``log``."""
    model = str(demo_model_dir("shapes-detector"))
    command = [sys.executable, "-m", "inferpack", "serve", model, "--name", "demo", "--port", str(port),
               "--no-license", "--state-dir", str(state), "--max-batch-size", "2"]  # fmt: skip
    with log.open("ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def wait_for(condition: str, check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.02)


async def test_killed_mid_job_resumes_without_loss_or_repeat(tmp_path: Path) -> None:
    work = tmp_path / "work"
    state = work / "demo" / "state"
    state.mkdir(parents=True)
    roots = ("--work-root", str(work))
    imported = cli("dataset", "import", "demo", str(detection_dataset(tmp_path / "scenes", 150, 31)), *roots)
    assert imported.returncode == 0 and "dataset scenes: 150 images, yolo layout" in imported.stdout, imported
    assert "valid: 150 images" in imported.stdout
    small = cli("dataset", "import", "demo", str(detection_dataset(tmp_path / "few", 12, 32)), *roots)
    assert small.returncode == 0, small
    listed = cli("dataset", "list", "demo", *roots)
    assert "scenes" in listed.stdout and "few" in listed.stdout

    log = tmp_path / "server.log"
    port = free_port()
    server = serve(state, port, log)
    jobs = JobStore(state / "data")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, port)
        queued = cli("predict", "demo", "scenes", "--no-wait", *roots)
        assert queued.returncode == 0, queued
        job_id = queued.stdout.strip()
        wait_for("10 images", lambda: jobs.get(job_id).done >= 10)
        server.kill()  # SIGKILL: no shutdown, images in flight are lost
        server.wait(timeout=30)
        killed = jobs.get(job_id)
        assert killed.state == "running" and killed.done < 150, killed
        before = {line["index"] for line in jobs.results(job_id).read()}

        port = free_port()
        server = serve(state, port, log)
        wait_for("the job to finish", lambda: jobs.get(job_id).finished_state)
        assert "going on" in log.read_text()  # the restarted server resumed it
        finished = jobs.get(job_id)
        indices = [line["index"] for line in jobs.results(job_id).read()]
        assert finished.state == "done" and finished.done == 150, finished
        assert sorted(indices) == list(range(150))  # every image once: none lost, none twice
        assert before <= set(indices) and len(before) >= 10

        evaluated = await asyncio.to_thread(cli, "evaluate", "demo", "few", *roots)
        assert evaluated.returncode == 0, evaluated
        out = evaluated.stdout
        assert "mAP@0.5" in out and "report: " in out and "report.html" in out, out
        report = Path(out.split("report: ")[1].split(" ")[0])
        assert report.is_file() and report.read_text().startswith("<!DOCTYPE html>")
        busy = cli("dataset", "delete", "demo", "nope", *roots)
        assert busy.returncode == 1 and "no dataset 'nope'" in busy.stderr
        assert cli("dataset", "delete", "demo", "few", *roots).returncode == 0
    finally:
        server.kill()
        server.wait(timeout=30)
