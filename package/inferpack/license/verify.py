"""Offline verification of a license for one deploy name on one machine, with a precise reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inferpack.license._time import format_utc, require_aware, utcnow
from inferpack.license.clock import ClockGuard
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import ComponentValue, Fingerprint
from inferpack.license.licfile import HostBinding, License, check_signature, decode_armor, parse_payload


@dataclass(frozen=True)
class Match:
    """How a machine's fingerprint compares with the licensed one."""

    matched: int
    total: int
    required: int
    gpus_present: int
    gpus_required: int
    host: int = 1  # which of the license's hosts this is (1-based)
    hosts: int = 1

    def problem(self) -> str | None:
        closest = f" (closest of {self.hosts} licensed hosts: host {self.host})" if self.hosts > 1 else ""
        if self.matched < self.required:
            return (
                f"wrong machine: {self.matched} of {self.total} fingerprint components match, "
                f"at least {self.required} required{closest}"
            )
        if self.gpus_present < self.gpus_required:
            return (
                f"wrong machine: {self.gpus_present} of the {self.gpus_required} licensed GPU(s) "
                f"present{closest}"
            )
        return None

    def describe(self) -> str:
        """``3/4`` components, and which host of a multi-host license matched."""
        host = f" (host {self.host} of {self.hosts})" if self.hosts > 1 else ""
        return f"{self.matched}/{self.total}{host}"


def _as_set(value: ComponentValue) -> set[str]:
    return set(value) if isinstance(value, tuple) else {value}


def _match_host(host: HostBinding, fingerprint: Fingerprint, number: int, hosts: int) -> Match:
    """N-of-M: a scalar component matches when equal, a list (NICs, GPUs) when any hash is shared."""
    matched = sum(
        bool(_as_set(licensed) & _as_set(fingerprint.components[kind]))
        for kind, licensed in host.components.items()
        if kind in fingerprint.components
    )
    gpus = _as_set(fingerprint.components.get("gpu_uuids", ()))
    required_gpus = set(host.policy.require_gpus)
    return Match(
        matched,
        len(host.components),
        host.policy.min_matches,
        len(required_gpus & gpus),
        len(required_gpus),
        number,
        hosts,
    )


def match_fingerprint(lic: License, fingerprint: Fingerprint) -> Match:
    """This machine against each licensed host on its own (never components pooled across hosts):
    the first host it matches, else the closest one, to word why it does not."""
    matches = [_match_host(h, fingerprint, n, len(lic.hosts)) for n, h in enumerate(lic.hosts, 1)]
    return min(matches, key=lambda m: (m.problem() is not None, m.required - m.matched, m.host))


def licensed_host(lic: License, match: Match) -> HostBinding:
    """The host binding ``match`` was made against."""
    return lic.hosts[match.host - 1]


@dataclass(frozen=True)
class LicenseState:
    """One verification's outcome. ``license`` is set only once the signature has verified, so
    nothing an attacker wrote into an unsigned file is ever shown as license data."""

    valid: bool
    reason: str
    license: License | None = None
    match: Match | None = None
    checked_at: datetime = field(default_factory=utcnow)

    def summary(self) -> dict[str, object]:
        """What /info and `license show` print: no hashes, keys or other secrets."""
        info: dict[str, object] = {
            "valid": self.valid,
            "reason": self.reason,
            "checked_at": format_utc(self.checked_at),
        }
        lic = self.license
        if lic is not None:
            info.update(
                licensee=lic.licensee,
                deploy_names=list(lic.deploy_names),
                issue_id=lic.issue_id,
                key_id=lic.key_id,
                not_before=format_utc(lic.not_before),
                not_after=format_utc(lic.not_after),
                days_left=max(0, (lic.not_after - self.checked_at).days),
                trial=lic.trial,
                limits={"max_instances": lic.limits.max_instances, "max_qps": lic.limits.max_qps},
            )
        if self.match is not None:
            info["matched_components"] = self.match.describe()
        return info


def verify_license(
    license_text: str,
    public_key: Ed25519PublicKey,
    deploy_name: str | None,
    fingerprint: Fingerprint,
    now: datetime | None = None,
    clock_guard: ClockGuard | None = None,
) -> LicenseState:
    """Checks, in order: malformed, signature, not-before, expiry, deploy name, machine, clock.

    ``deploy_name`` None skips the deploy-name check and ``clock_guard`` None the clock check;
    both are for inspection tools (`license show`): a server always passes both.
    """
    now = require_aware(now) if now is not None else utcnow()
    try:
        payload, signature = decode_armor(license_text)
        # Signature before parsing fields: any altered byte reads "bad signature", not a parse error.
        check_signature(payload, signature, public_key)
        lic = parse_payload(payload, signature)
    except LicenseError as exc:
        return LicenseState(False, exc.reason, checked_at=now)

    def refused(reason: str, match: Match | None = None) -> LicenseState:
        return LicenseState(False, reason, lic, match, now)

    if now < lic.not_before:
        return refused(f"not valid before {format_utc(lic.not_before)}")
    if now > lic.not_after:
        return refused(f"{'trial ' if lic.trial else ''}expired on {format_utc(lic.not_after)}")
    if deploy_name is not None and deploy_name not in lic.deploy_names:
        return refused(
            f"not licensed for deploy name {deploy_name!r} (licensed: {', '.join(lic.deploy_names)})"
        )
    match = match_fingerprint(lic, fingerprint)
    if problem := match.problem():
        return refused(problem, match)
    # The clock comes last so that only times at which the license is otherwise good are recorded:
    # a clock set far ahead by mistake (license "expired") does not leave a mark that later locks out.
    if clock_guard is not None:
        try:
            clock_guard.check(now, lic.issue_id if lic.clock_reset else None, lic.issued_at)
        except LicenseError as exc:
            return refused(exc.reason, match)
    return LicenseState(True, "license valid", lic, match, now)
