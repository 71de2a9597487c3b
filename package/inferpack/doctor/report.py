"""The doctor's output: one line per check (its next step and evidence indented under a
WARN/FAIL), a summary, and the same as JSON for machines and the support bundle."""

from __future__ import annotations

import json
import platform
import socket
import sys
from typing import Any

from inferpack import __version__
from inferpack.doctor.context import Options
from inferpack.doctor.result import Result
from inferpack.doctor.runner import Report
from inferpack.license._time import format_utc, utcnow


def header(opts: Options) -> str:
    return (
        f"inferpack doctor {__version__} on {socket.gethostname()} at {format_utc(utcnow())}, "
        f"work root {opts.work_root}"
    )


def summary(report: Report) -> str:
    counts = f"{report.count('PASS')} PASS, {report.count('WARN')} WARN, {report.count('FAIL')} FAIL"
    services = f"{len(report.services)} service(s): {', '.join(report.services) or 'none'}"
    verdict = "nothing failed" if report.ok else "fix the FAIL lines first, from the top"
    return f"summary: {counts} ({services}); {verdict}"


def text_lines(report: Report, opts: Options) -> list[str]:
    width = max([4, *(len(r.scope) for r in report.results)])
    indent = " " * (6 + width + 2 + 12 + 1)
    lines = [header(opts)]
    for result in report.results:
        lines.append(f"{result.status:<5} {result.scope:<{width}}  {result.name:<12} {result.found}")
        if result.status != "PASS":
            if result.next_step:
                lines.append(f"{indent}-> {result.next_step}")
            lines += [f"{indent}|  {line}" for line in result.evidence]
    lines.append(summary(report))
    return lines


def versions() -> dict[str, Any]:
    return {
        "inferpack": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "generated": format_utc(utcnow()),
    }


def to_json(report: Report, opts: Options) -> dict[str, Any]:
    results: list[Result] = report.results
    return {
        **versions(),
        "work_root": str(opts.work_root),
        "services": report.services,
        "summary": {s: report.count(s) for s in ("PASS", "WARN", "FAIL")},
        "ok": report.ok,
        "results": [r.to_json() for r in results],
    }


def dumps(report: Report, opts: Options) -> str:
    return json.dumps(to_json(report, opts), indent=2)
