"""Batch jobs vs online requests on one server: online latency with and without a job running
at full speed, and the job's throughput alone and under that load.

Three phases on one ``inferpack serve`` of a demo model, the same online load in (a) and (c):
(a) online only: p50/p99 at ``--concurrency`` (moderate: below saturation);
(b) job only: images per second of a predict job over a synthetic dataset;
(c) both: the same online load while a job runs (restarted whenever it ends).
The goal: p99 (c) within 1.25x of (a), and the job still using the idle capacity in (c).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.images import request_bodies
from bench.loadgen import LoadResult, run_load
from bench.models import DEMO_MODELS
from bench.servers import INFERPACK, free_port, launch
from inferpack.apikeys import create_key
from inferpack.datasets.store import DatasetStore
from inferpack.demo.datasets import classification_dataset, detection_dataset


class JobDriver:
    """Keeps a predict job running over the dataset, creating the next when one ends."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.headers = base, {"Authorization": f"Bearer {key}"}
        self.images = 0  # finished by completed jobs, plus the current one's progress
        self._done_before = 0

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with session.post(
                f"{self.base}/jobs", json={"dataset": "bench"}, headers=self.headers
            ) as r:
                job_id = (await r.json())["job"]["id"]
            while True:
                async with session.get(f"{self.base}/jobs/{job_id}", headers=self.headers) as r:
                    job = (await r.json())["job"]
                self.images = self._done_before + job["done"]
                if job["state"] in ("done", "failed", "cancelled") or stop.is_set():
                    break
                await asyncio.sleep(0.2)
            if job["state"] not in ("done", "failed", "cancelled"):
                async with session.post(f"{self.base}/jobs/{job_id}/cancel", headers=self.headers):
                    pass
            self._done_before = self.images


async def job_alone(base: str, key: str, seconds: float) -> float:
    driver = JobDriver(base, key)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(driver.run(session, stop))
        await asyncio.sleep(2.0)  # warm-up
        start_images, started = driver.images, time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (driver.images - start_images) / (time.perf_counter() - started)
        stop.set()
        await task
    return rate


async def online_with_job(
    url: str, base: str, key: str, bodies: list[bytes], args: argparse.Namespace, pid: int
) -> tuple[LoadResult, float]:
    driver = JobDriver(base, key)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(driver.run(session, stop))
        await asyncio.sleep(2.0)
        start_images, started = driver.images, time.perf_counter()
        load = await run_load(
            url,
            bodies,
            concurrency=args.concurrency,
            duration_s=args.duration,
            warmup_s=args.warmup,
            server_pid=pid,
        )
        rate = (driver.images - start_images) / (time.perf_counter() - started)
        stop.set()
        await task
    return load, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=("shapes-detector", "shapes-classifier"), default="shapes-detector"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="online requests in flight (default 2)")
    parser.add_argument("--duration", type=float, default=30.0, help="recorded seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--images", type=int, default=400, help="images in the job's dataset")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="inferpack-bench-jobs-") as temp:
        state = Path(temp) / "state"
        make = detection_dataset if args.model == "shapes-detector" else classification_dataset
        DatasetStore(state / "data").import_folder(make(Path(temp) / "images", args.images, 99), "bench")
        key = create_key(state / "data")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        route = "ObjectDetection" if args.model == "shapes-detector" else "ImageClassification"
        command = [*INFERPACK, "serve", str(DEMO_MODELS / args.model), "--name", "bench",
                   "--port", str(port), "--no-license", "--state-dir", str(state)]  # fmt: skip
        bodies = request_bodies()
        with launch(
            "inferpack-jobs", command, ready_url=f"{base}/readyz", predict_url=f"{base}/bench/{route}"
        ) as server:
            alone = asyncio.run(
                run_load(
                    server.url,
                    bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup,
                    server_pid=server.pid,
                )
            )
            job_rate = asyncio.run(job_alone(base, key, args.duration))
            both, shared_rate = asyncio.run(online_with_job(server.url, base, key, bodies, args, server.pid))
    print(f"model {args.model}, online concurrency {args.concurrency}, {args.duration:.0f}s per phase")
    print(f"{'phase':<18} {'online img/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'job img/s':>10}")
    for name, load, rate in (("(a) online only", alone, None), ("(b) job only", None, job_rate),
                             ("(c) online + job", both, shared_rate)):  # fmt: skip
        online = (
            f"{load.throughput:>12.1f} {load.p50_ms:>8.1f} {load.p99_ms:>8.1f} {load.errors:>7}"
            if load
            else (f"{'-':>12} {'-':>8} {'-':>8} {'-':>7}")
        )
        print(f"{name:<18} {online} {f'{rate:.1f}' if rate is not None else '-':>10}")
    print(f"p99 (c)/(a): {both.p99_ms / alone.p99_ms:.2f}x (goal <= 1.25x)")


if __name__ == "__main__":
    main()
