"""The installer's port check against real sockets: a listener holds a port, TIME_WAIT does not."""

from __future__ import annotations

import socket

from inferpack.deploy.checks import check_port, port_is_free


def _listener() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_a_listening_port_is_taken_and_the_check_says_what_to_do() -> None:
    with _listener() as server:
        port = server.getsockname()[1]
        check = check_port(port, held_by_us=False)
        assert not port_is_free(port)
        assert not check.passed and f"{port} is in use" in check.detail and "--port" in check.hint


def test_connections_left_in_time_wait_do_not_hold_the_port() -> None:
    """Right after `remove`, the old front's closed connections linger; `install` must go on."""
    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first, so the port is the one left in TIME_WAIT
    client.close()
    server.close()
    assert port_is_free(port)
    assert check_port(port, held_by_us=False).passed
