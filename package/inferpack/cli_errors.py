"""How every CLI verb reports a failure its user can fix: one line on stderr, exit status 1.

Each CLI module names the exceptions it expects (a bad file, a wrong value, a busy work root);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]


def describe_failure(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # LicenseError, PackageError: the why, without a prefix
    if isinstance(reason, str):
        return reason
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        source, _, why = exc.args[0][0]  # copytree's (src, dst, why) per file: the first says it
        return f"copying {source}: {why}"
    if isinstance(exc, FileExistsError):
        return f"{exc.filename} already exists; refusing to overwrite it"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def port_number(text: str) -> int:
    """An argparse type: a TCP port a server can listen on, 1-65535 (0 would pick a random one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: use 1-65535")
    return port


def one_line_errors(
    expected: tuple[type[BaseException], ...], prefix: str | None = None
) -> Callable[[Handler], Handler]:
    """Prints ``prefix: message`` (default ``inferpack COMMAND``) for the ``expected`` failures.

    A multi-line message (e.g. the tail of a failing backend's log) keeps its first line on the
    prefix line and the rest indented below it.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args)
            except expected as exc:
                first, *rest = describe_failure(exc).splitlines() or [type(exc).__name__]
            print(f"{prefix or f'inferpack {args.command}'}: {first}", file=sys.stderr)
            for line in rest:
                print(f"    {line}", file=sys.stderr)
            return 1

        return run

    return decorate
