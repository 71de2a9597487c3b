"""The gate's wait for /readyz, against a real HTTP server that is not ready."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inferpack.deploy.gate import GateFailed, wait_ready


class NotReady(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"reasons": ["model: loading"]}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loading() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_long_wait_says_it_is_still_waiting_and_why(loading: str) -> None:
    lines: list[str] = []
    with pytest.raises(GateFailed, match="not ready after 1s: HTTP 503: model: loading"):
        wait_ready(loading, 1.0, progress=lines.append, progress_every_s=0.3)
    assert len(lines) >= 2, lines
    assert all(line.startswith("... not ready yet after ") and "model: loading" in line for line in lines)
