"""Dependencies point down: what importing a module drags in, measured in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inferpack.easydl import LogIds, error_body
from inferpack.errors import ModelUnavailable


def loaded_by(module: str) -> set[str]:
    probe = f"import sys, {module}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in done.stdout.split()} | set(done.stdout.split())


@pytest.mark.parametrize(
    ("module", "never"),
    [
        # The installer needs the route per task, not the model stack: status and list stay quick.
        (
            "inferpack.deploy.installer",
            {"cv2", "numpy", "onnxruntime", "inferpack.server", "inferpack.doctor"},
        ),
        ("inferpack.deploy.operator_cli", {"inferpack.doctor", "inferpack.server"}),
        ("inferpack.easydl", {"aiohttp", "orjson", "numpy"}),
    ],
)
def test_a_module_loads_only_what_it_needs(module: str, never: set[str]) -> None:
    assert loaded_by(module) & never == set()


def test_log_ids_are_unique_ordered_and_exact_as_json_numbers() -> None:
    ids = LogIds()
    drawn = [ids.next() for _ in range(500)]
    assert len(set(drawn)) == 500 and all(0 < i < 2**53 for i in drawn)
    body = error_body(drawn[0], ModelUnavailable("busy", 2))
    assert body == {"log_id": drawn[0], "error_code": 336100, "error_msg": body["error_msg"]}
