"""Helpers for the dataset and job tests: archives, a keyed client, waiting on a job."""

from __future__ import annotations

import asyncio
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from inferpack.apikeys import create_key


def zip_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def tar_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


def key_for(state_dir: Path) -> dict[str, str]:
    """A fresh API key for the server whose state_dir this is, as a Bearer header."""
    return {"Authorization": f"Bearer {create_key(state_dir / 'data')}"}


async def upload(client: TestClient[Any, Any], headers: dict[str, str], dataset_id: str, body: bytes) -> Any:
    response = await client.post(f"/datasets?id={dataset_id}", data=io.BytesIO(body), headers=headers)
    answer = await response.json()
    assert response.status == 201, answer
    return answer["dataset"]


async def wait_job(
    client: TestClient[Any, Any], headers: dict[str, str], job_id: str, timeout_s: float = 120
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get(f"/jobs/{job_id}", headers=headers)
        job = (await response.json())["job"]
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.1)
