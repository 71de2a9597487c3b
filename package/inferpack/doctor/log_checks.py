"""Key error lines from each instance's recent log: tracebacks, EasyDL error counts (336000
internal error, 337000 license refused), signs of the OOM killer; the last few shown with
their timestamps.

``scan`` is pure (text in, findings out); the log text comes from ``Runtime.logs``: the
container's output for Docker, the server's and its supervisor's log files for processes.
A traceback or OOM sign FAILs only when it came after the last start (the server's "ready"
line, the front's "listening" line, the supervisor's "started" line): one from a run that has
since been fixed and restarted is a WARN, so a repaired service can pass again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from inferpack.deploy.runtime import InstanceStatus
from inferpack.doctor.context import Options, Service
from inferpack.doctor.result import Result, failed, passed, warned

TRACEBACK = "Traceback (most recent call last):"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")
ERROR_CODE = re.compile(r"log_id=(\d+) error_code=(\d+)")
KEY_LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
OOM = re.compile(r"MemoryError|std::bad_alloc|[Oo]ut of memory|exited with 137\b|\bOOM\b")
START = re.compile(r"ready: POST |front listening on |supervise\[[^]]*\]: started ")
INTERNAL, LICENSE, UNAVAILABLE = 336000, 337000, 336100


@dataclass
class LogFindings:
    lines_read: int = 0
    tracebacks: list[str] = field(default_factory=list)  # "TIME ExceptionType: message", oldest first
    codes: dict[int, set[str]] = field(default_factory=dict)  # error code -> distinct log ids since start
    oom: list[str] = field(default_factory=list)
    key_lines: list[str] = field(default_factory=list)  # oldest first, each with its timestamp
    stale_tracebacks: int = 0  # how many of ``tracebacks`` came before the last start
    stale_oom: int = 0

    @property
    def fresh_tracebacks(self) -> list[str]:
        return self.tracebacks[self.stale_tracebacks :]

    @property
    def fresh_oom(self) -> list[str]:
        return self.oom[self.stale_oom :]

    def count(self, code: int) -> int:
        return len(self.codes.get(code, ()))


def scan(text: str) -> LogFindings:
    """Reads log text once. A traceback's time is that of the last timestamped line before it
    (the ``log.exception`` line); chained tracebacks count as one, named by the last exception."""
    found = LogFindings()
    lines = text.splitlines()
    found.lines_read = len(lines)
    stamp = "time unknown"
    in_traceback = chained = False
    for line in lines:
        if match := TIMESTAMP.match(line):
            stamp = match.group(1)
        if line.startswith(TRACEBACK):
            if not chained:  # a new event; a chained one continues the last
                found.tracebacks.append(f"{stamp} (no exception line)")
                found.key_lines.append(found.tracebacks[-1])
            in_traceback, chained = True, False
            continue
        if line.startswith(CHAINED):
            chained = True
            continue
        if in_traceback:
            if line.startswith((" ", "\t")) or not line.strip():
                continue
            found.tracebacks[-1] = found.key_lines[-1] = f"{stamp} {line.strip()[:300]}"
            if OOM.search(line):
                found.oom.append(line.strip()[:300])
            in_traceback = False
            continue
        if line.strip():
            chained = False
        if START.search(line):  # what came before is from an earlier run; counts start afresh
            found.stale_tracebacks, found.stale_oom = len(found.tracebacks), len(found.oom)
            found.codes = {}
        for log_id, code in ERROR_CODE.findall(line):
            found.codes.setdefault(int(code), set()).add(log_id)
        if OOM.search(line):
            found.oom.append(line.strip()[:300])
        if KEY_LEVEL.search(line) or OOM.search(line):
            entry = line.strip() if TIMESTAMP.match(line) else f"{stamp} {line.strip()}"
            found.key_lines.append(entry[:300])
    return found


def _where(service: Service, instance: InstanceStatus) -> str:
    if service.settings.runtime == "docker":
        return f"docker logs {instance.name}"
    return f"the files in {instance.details.get('log_dir') or service.layout.logs_dir}"


def grade(service: Service, instance: InstanceStatus, found: LogFindings, opts: Options) -> Result:
    """Pure but for naming: the verdict on one instance's findings."""
    scope, shown = service.name, tuple(found.key_lines[-opts.show_lines :])
    span = f"{instance.name}: last {found.lines_read} log lines"
    bundle = "bash trouble_shooting.sh --bundle support.tar.gz, and send it to the vendor"
    counts = ", ".join(f"{found.count(code)} x {code}" for code in (INTERNAL, LICENSE, UNAVAILABLE))
    if found.fresh_tracebacks:
        fresh = found.fresh_tracebacks
        return failed(
            scope,
            "logs",
            f"{span}: {len(fresh)} traceback(s) since the last start, latest {fresh[-1]}; {counts}",
            f"read them ({_where(service, instance)}); {bundle}",
            shown,
        )
    if found.fresh_oom:
        return failed(
            scope,
            "logs",
            f"{span}: signs of running out of memory ({found.fresh_oom[-1]})",
            "see the memory check: free memory, or serve with a smaller --max-batch-size",
            shown,
        )
    if found.tracebacks or found.oom:
        latest = (found.tracebacks or found.oom)[-1]
        return warned(
            scope,
            "logs",
            f"{span}: {len(found.tracebacks)} traceback(s) before the last start (latest {latest}), "
            f"none since; {counts}",
            f"nothing to do while the service works; to see what happened: {_where(service, instance)}",
            shown,
        )
    if found.count(INTERNAL):
        return warned(
            scope,
            "logs",
            f"{span}: {counts}",
            f"internal errors are logged with their log_id: {bundle}",
            shown,
        )
    if found.count(LICENSE):
        return warned(
            scope,
            "logs",
            f"{span}: {counts}",
            "requests were refused for the license: see the license checks",
            shown,
        )
    return passed(scope, "logs", f"{span}: no tracebacks; {counts}")


def logs(service: Service, opts: Options) -> list[Result]:
    return [
        grade(
            service,
            instance,
            scan(service.runtime.logs(service.layout, instance.name, opts.scan_lines)),
            opts,
        )
        for instance in service.instances
    ]
