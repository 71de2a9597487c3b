"""The real aiohttp app on a loopback port (pytest-aiohttp's TestServer), with real models."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferpack.config import ServerConfig
from inferpack.server.app import init_app, make_runner

StartServer = Callable[..., Awaitable[TestClient[Any, Any]]]


class ProductionTestServer(TestServer):
    """pytest-aiohttp's server with production's runner (access logger, EasyDL protocol errors)."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return make_runner(self.app, **kwargs)


async def wait_ready(client: TestClient[Any, Any], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get("/readyz")
        if response.status == 200:
            return
        body = await response.json()
        assert "model failed" not in str(body), body
        assert asyncio.get_running_loop().time() < deadline, f"not ready after {timeout_s}s: {body}"
        await asyncio.sleep(0.05)


@pytest.fixture
def start_server(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]) -> StartServer:
    async def start(model_dir: Path, *, ready: bool = True, **settings: Any) -> TestClient[Any, Any]:
        """Development mode (no license check) unless a license is given: say so explicitly."""
        settings.setdefault("deploy_name", "demo")
        if "license_file" not in settings:
            settings.setdefault("development_mode", True)
        config = ServerConfig(model_dir=model_dir, **settings)
        server = ProductionTestServer(await init_app(config))
        client = await aiohttp_client(server)
        if ready:
            await wait_ready(client)
        return client

    return start
