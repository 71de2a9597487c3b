"""Helpers for tests that install real services: free ports, predictions, cleaning up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import urllib.request
from pathlib import Path
from typing import Any

from inferpack.deploy import loopback
from tests.conftest import RED, b64, encode, solid

RED_IMAGE = json.dumps({"image": b64(encode(solid(RED)))}).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(port: int, path: str, body: bytes = RED_IMAGE, timeout_s: float = 10) -> dict[str, Any]:
    """A client's POST to 127.0.0.1:``port``: the JSON answer, or urllib's HTTPError."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with loopback.opener.open(request, timeout=timeout_s) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def kill_supervised(work_root: Path) -> None:
    """Ends every supervisor (and its server) a process-runtime test left under ``work_root``."""
    for pidfile in work_root.glob("*/state/processes/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
