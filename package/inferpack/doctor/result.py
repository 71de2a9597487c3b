"""One doctor finding: PASS, WARN or FAIL, what was found, and for WARN/FAIL the next step.

The installer's preflight ``Check`` is PASS/FAIL only; ``from_check`` lets the doctor reuse
those probes (image present, port free, GPU, nvidia runtime) as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from inferpack.deploy.checks import Check

Status = Literal["PASS", "WARN", "FAIL"]
HOST = "host"  # the ``scope`` of checks that are about the machine, not one service


@dataclass(frozen=True)
class Result:
    scope: str  # HOST, or the deploy name the check is about
    name: str  # short check name: "container", "license", "disk", ...
    status: Status
    found: str  # what the probe saw, one line
    next_step: str = ""  # for WARN/FAIL: what to do about it, concretely
    evidence: tuple[str, ...] = field(default=())  # extra lines: log excerpts, health probe output

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "check": self.name,
            "status": self.status,
            "found": self.found,
            "next_step": self.next_step,
            "evidence": list(self.evidence),
        }


def passed(scope: str, name: str, found: str, evidence: tuple[str, ...] = ()) -> Result:
    return Result(scope, name, "PASS", found, "", evidence)


def warned(scope: str, name: str, found: str, next_step: str, evidence: tuple[str, ...] = ()) -> Result:
    return Result(scope, name, "WARN", found, next_step, evidence)


def failed(scope: str, name: str, found: str, next_step: str, evidence: tuple[str, ...] = ()) -> Result:
    return Result(scope, name, "FAIL", found, next_step, evidence)


def from_check(scope: str, check: Check, next_step: str | None = None) -> Result:
    """A preflight check as a doctor result; ``next_step`` replaces its install-time hint."""
    if check.passed:
        return passed(scope, check.name, check.detail)
    return failed(scope, check.name, check.detail, next_step or check.hint)
