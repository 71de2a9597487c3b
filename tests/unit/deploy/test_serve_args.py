"""settings.json serve_args: tuning flags pass, anything touching the license never does."""

from __future__ import annotations

import pytest

from inferpack.deploy.runtime import BackendSpec
from inferpack.deploy.serve_args import check_serve_args


@pytest.mark.parametrize(
    "args",
    [(), ("--max-batch-size", "4"), ("--max-delay-ms=1.5", "--decode-workers", "2"), ("--backend", "auto")],
)
def test_tuning_flags_pass(args: tuple[str, ...]) -> None:
    check_serve_args(args)
    assert BackendSpec("1-0-0", "1.0.0", 9000, serve_args=args).serve_args == args


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--no-license",), "'--no-license' is not allowed"),
        (("--license", "mine.lic"), "'--license' is not allowed"),
        (("--lic", "mine.lic"), "'--lic' is not allowed"),  # argparse would expand the prefix
        (("--vendor-key=mine.pub",), "'--vendor-key' is not allowed"),
        (("--host-root", "/empty"), "'--host-root' is not allowed"),
        (("--port", "80"), "'--port' is not allowed"),
        (("--max-batch-size", "--no-license"), "--max-batch-size needs a value"),
        (("--max-batch-size",), "--max-batch-size needs a value"),
        (("4",), "'4' is not allowed"),
    ],
)
def test_anything_else_is_refused_by_name(args: tuple[str, ...], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        BackendSpec("1-0-0", "1.0.0", 9000, serve_args=args)
