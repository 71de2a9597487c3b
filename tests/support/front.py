"""Helpers for the front's tests: free loopback ports, the ``front`` fixture's type, and the
front as its own process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from subprocess import STDOUT

import aiohttp

StartFront = Callable[..., Awaitable[str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def front_process(routes: Path, *flags: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``inferpack front`` as its own process, once it answers; killed after the block if still running."""
    port = free_port()
    command = [sys.executable, "-m", "inferpack", "front", "--port", str(port), "--routes", str(routes)]
    process = await asyncio.create_subprocess_exec(
        *command, *flags, stdout=asyncio.subprocess.PIPE, stderr=STDOUT
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # until it listens
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(f"http://127.0.0.1:{port}/_front/healthz"):
                        break
                await asyncio.sleep(0.05)
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()
