"""Installer preflight checks: the port against real sockets, max_instances against real licenses."""

from __future__ import annotations

import socket
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.deploy.checks import check_instances, check_port, cuda_driver_check, port_is_free
from inferpack.license.fingerprint import LicenseRequest, collect
from inferpack.license.licfile import issue_license, parse_license
from inferpack.license.registry import Registration, registry_dir, service_id


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


def _license(tmp_path: Path, file_name: str, max_instances: int | None) -> Path:
    """A real signed license for this host, for deploy names cats and dogs."""
    fingerprint = collect(Path("/"))
    request = LicenseRequest(fingerprint.components, fingerprint.summary, "0.1.0", "2030-06-01T12:00:00Z")
    text = issue_license(
        Ed25519PrivateKey.generate(), request, ["cats", "dogs"], days=30, max_instances=max_instances
    )
    path = tmp_path / file_name
    path.write_text(text)
    return path


def test_max_instances_counts_the_services_installed_with_the_same_license(tmp_path: Path) -> None:
    shared = _license(tmp_path, "shared.lic", max_instances=1)
    other = _license(tmp_path, "other.lic", max_instances=1)

    first = check_instances(shared, "cats", [])
    assert first.passed and first.detail == "1 of 1 licensed instance(s)"
    # another service with another license does not count; reinstalling cats itself does not either
    assert check_instances(shared, "dogs", [("birds", other), ("dogs", shared)]).passed

    refused = check_instances(shared, "dogs", [("cats", shared), ("birds", other)])
    assert not refused.passed
    assert refused.detail == "2 of 1 licensed instance(s) (cats use it too)"
    assert "remove a service" in refused.hint


def test_no_limit_or_no_license_leaves_the_verdict_to_the_license_check(tmp_path: Path) -> None:
    unlimited = _license(tmp_path, "unlimited.lic", max_instances=None)
    assert check_instances(unlimited, "dogs", [("cats", unlimited)]).passed
    assert check_instances(None, "dogs", []).passed
    assert check_instances(tmp_path / "absent.lic", "dogs", []).passed


def test_the_host_driver_is_compared_with_the_image_cuda() -> None:
    """The seed ships one package per CUDA version: a driver too old for this one names the other."""
    assert cuda_driver_check("13.0.2", "580.82.07").passed
    assert cuda_driver_check("12.4.1", "535.104.05").passed
    old = cuda_driver_check("13.0.2", "535.104.05")
    assert not old.passed
    assert old.detail == "the image needs CUDA 13.0.2: driver 580.65.06 or newer; this host has 535.104.05"
    assert old.hint.endswith("package built for CUDA 12") and "580.65.06+" in old.hint
    assert not cuda_driver_check("12.4.1", None).passed  # no driver answers
    assert cuda_driver_check(None, None).passed  # a CPU image names no CUDA


def test_max_instances_counts_what_serves_the_license_anywhere_on_the_host(tmp_path: Path) -> None:
    """A service in another work root (here: a registration held in this process, as a server
    holds it) counts; this work root's own services are counted by name, not twice."""
    shared = _license(tmp_path, "shared.lic", max_instances=1)
    issue_id = parse_license(shared.read_text()).issue_id
    elsewhere, mine = tmp_path / "other-root" / "cats" / "state", tmp_path / "root" / "dogs" / "state"
    for folder in (elsewhere, mine):
        folder.mkdir(parents=True)
    registration = Registration(registry_dir(), service_id(elsewhere))
    assert registration.claim(issue_id, max_instances=1) is None
    try:
        refused = check_instances(shared, "dogs", [], state_dirs=[mine])
        assert not refused.passed
        assert (
            refused.detail
            == "2 of 1 licensed instance(s) (1 more serving it on this host, outside this work root)"
        )
        assert check_instances(
            shared, "cats", [], state_dirs=[elsewhere]
        ).passed  # that one is this root's own
    finally:
        registration.release()
    assert check_instances(shared, "dogs", [], state_dirs=[mine]).passed
