"""A labeling task through the operator's CLI and a real ``inferpack serve`` process: a
SIGKILLed server resumes it after the restart; ``label`` prints counts, hard examples, exports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from inferpack.demo.datasets import detection_dataset
from inferpack.jobs.store import JobStore
from tests.integration.test_jobs_resume import cli, serve, wait_for
from tests.integration.test_serve_process import free_port, wait_ready


async def test_killed_mid_task_resumes_and_the_cli_reports_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    state = work / "demo" / "state"
    state.mkdir(parents=True)
    roots = ("--work-root", str(work))
    scenes = detection_dataset(tmp_path / "scenes", 100, 57)
    for label_file in sorted((scenes / "data").glob("*.txt"))[::2]:
        label_file.unlink()  # half the dataset is unlabelled
    assert cli("dataset", "import", "demo", str(scenes), *roots).returncode == 0
    assert (
        cli("dataset", "import", "demo", str(detection_dataset(tmp_path / "few", 10, 58)), *roots).returncode
        == 0
    )
    log = tmp_path / "server.log"
    server = serve(state, free_port(), log)
    jobs = JobStore(state / "data")
    try:
        queued = cli("label", "demo", "scenes", "--task", "auto-label", "--no-wait", *roots)
        assert queued.returncode == 0, queued
        task_id = queued.stdout.strip()
        wait_for("10 images", lambda: jobs.get(task_id).done >= 10)
        server.kill()
        server.wait(timeout=30)
        killed = jobs.get(task_id)
        assert killed.state == "running" and killed.done < 100, killed
        port = free_port()
        server = serve(state, port, log)
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, port)
        wait_for("the task to finish", lambda: jobs.get(task_id).finished_state)
        finished = jobs.get(task_id)
        indices = sorted(line["index"] for line in jobs.results(task_id).read())
        assert finished.state == "done" and indices == list(range(100)), finished
        assert finished.summary["total_sample_count"] == 100 and finished.config["task_type"] == "auto-label"

        out_file = tmp_path / "few-studio.json"
        args = ("label", "demo", "few", "--hard-only", "--export", "labelstudio", "--out", str(out_file))
        labelled = await asyncio.to_thread(cli, *args, *roots)
        assert labelled.returncode == 0, labelled
        assert "total_sample_count       10" in labelled.stdout and "proposals: " in labelled.stdout
        hard_lines = [line for line in labelled.stdout.splitlines() if line.startswith("hard ")]
        count = int(labelled.stdout.split("hard_sample_count")[1].split()[0])
        assert len(hard_lines) == count
        studio = json.loads(out_file.read_text())
        assert len(studio) == count and all(
            t["predictions"][0]["model_version"] == "inferpack" for t in studio
        )
        bad = cli("label", "demo", "few", "--confidence-scope", "0.9-0.1", *roots)
        assert bad.returncode != 0 and "confidence_scope" in bad.stderr and len(bad.stderr.splitlines()) == 1
    finally:
        server.kill()
        server.wait(timeout=30)
