"""`inferpack serve` starts without importing the other verbs' modules (a service's cold start)."""

from __future__ import annotations

import subprocess
import sys


def test_serve_imports_no_other_verb() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inferpack", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "--precision" in result.stdout and "inferpack.config" in imported
    assert not {
        m for m in imported if m.startswith(("inferpack.deploy", "inferpack.doctor", "inferpack.client"))
    }
