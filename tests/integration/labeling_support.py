"""Helpers for the labeling-task tests: start a task and wait for it to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from inferpack.demo import demo_model_dir
from tests.integration.conftest import StartServer
from tests.integration.jobs_support import key_for, upload, zip_of


async def serve_dataset(
    start_server: StartServer, state: Path, model: str, folder: Path, dataset_id: str
) -> tuple[TestClient[Any, Any], dict[str, str]]:
    """A server of the demo ``model`` holding ``folder`` as ``dataset_id``, and its key header."""
    client = await start_server(demo_model_dir(model), state_dir=state)
    headers = key_for(state)
    await upload(client, headers, dataset_id, zip_of(folder))
    return client, headers


async def run_task(
    client: TestClient[Any, Any],
    headers: dict[str, str],
    dataset_id: str,
    body: dict[str, Any],
    timeout_s: float = 120,
) -> Any:
    response = await client.post(f"/demo/datasets/{dataset_id}/tasks", json=body, headers=headers)
    started = await response.json()
    assert response.status == 200 and set(started) == {"task_id"}, started
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        task = await (
            await client.get(f"/demo/datasets/{dataset_id}/tasks/{started['task_id']}", headers=headers)
        ).json()
        if task["status"] >= 2:
            return task
        assert 0 <= task["progress"] < 100 and asyncio.get_running_loop().time() < deadline, task
        await asyncio.sleep(0.1)


async def proposals(
    client: TestClient[Any, Any], headers: dict[str, str], dataset_id: str, query: str = ""
) -> Any:
    response = await client.get(
        f"/demo/datasets/{dataset_id}/auto-annotations/samples?limit=10000{query}", headers=headers
    )
    body = await response.json()
    assert response.status == 200, body
    return body
