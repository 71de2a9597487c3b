"""What an operator sees when a command line is wrong: one line, a non-zero exit, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import free_port


def inferpack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferpack", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize("port", ["0", "99999", "-1", "http"])
def test_a_port_outside_1_65535_is_refused_before_any_work(port: str, tmp_path: Path) -> None:
    done = inferpack("install", "svc", "--port", port, "--work-root", str(tmp_path / "work"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "1-65535" in done.stderr, done.stderr
    assert not (tmp_path / "work").exists()


def test_a_mistyped_verb_names_the_nearest_one() -> None:
    done = inferpack("isntall", "svc")
    assert done.returncode == 2
    assert (
        done.stderr == "inferpack: 'isntall' is not a verb; did you mean 'install'? (see inferpack --help)\n"
    )


def test_quickstart_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = inferpack("quickstart", "--once", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


def test_quickstart_once_prints_no_curl_line_for_the_server_it_stopped(tmp_path: Path) -> None:
    done = inferpack("quickstart", "--once", "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "HTTP 200" in done.stdout and '"results"' in done.stdout
    assert "curl" not in done.stdout


def test_license_issue_into_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert inferpack("license", "keygen", "--out", str(keys)).returncode == 0
    assert inferpack("fingerprint", "--out", str(tmp_path / "request.json")).returncode == 0
    missing = tmp_path / "no" / "such"
    done = inferpack(
        "license", "issue", "--key", str(keys / "vendor.key"), "--request", str(tmp_path / "request.json"),
        "--deploy", "cats", "--days", "30", "--out", str(missing / "cats.lic"),
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"inferpack license issue: {missing}: no such folder (create it first)\n"
