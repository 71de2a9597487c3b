"""The `inferpack serve` flags an operator may add through settings.json ``serve_args``: tuning.

Anything that decides what the license is checked against (--license, --no-license,
--vendor-key, --host-root) or where the server listens and keeps state is set by the runtime
alone, so editing settings.json cannot turn an installed service into an unlicensed one.
"""

from __future__ import annotations

from collections.abc import Sequence

ALLOWED_FLAGS = (
    "--backend", "--device-id", "--max-batch-size", "--max-delay-ms", "--latency-target-ms",
    "--max-inflight", "--decode-workers", "--intra-op-threads", "--log-level", "--precision",
)  # fmt: skip


def check_serve_args(args: Sequence[str]) -> None:
    """ValueError naming the first flag that is not a tuning flag, or one given without its value.

    Exact names only (argparse would take ``--lic`` for ``--license``), and a value never starts
    with "-", so no flag hides in a value's place."""
    tokens = iter(args)
    for token in tokens:
        flag, has_value, _ = token.partition("=")
        if flag not in ALLOWED_FLAGS:
            raise ValueError(
                f"serve_args: {flag!r} is not allowed (only {', '.join(ALLOWED_FLAGS)}); "
                "edit serve_args in the service's settings.json"
            )
        if has_value:
            continue
        value = next(tokens, None)
        if value is None or value.startswith("-"):
            raise ValueError(f"serve_args: {flag} needs a value")
