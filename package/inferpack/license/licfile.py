"""The license file: a signed, versioned JSON payload in an armored text block.

::

    # inferpack license for ACME Corp (comment lines: for people, never trusted)
    -----BEGIN INFERPACK LICENSE-----
    <base64 of the exact payload bytes, wrapped at 64 columns>
    -----SIGNATURE-----
    <base64 of the Ed25519 signature over b"inferpack-license-v1\\n" + payload>
    -----END INFERPACK LICENSE-----

A license binds one host (format version 1: ``components`` and ``policy`` at the top) or several
(version 2, for a cluster: ``hosts``, a list of ``{components, policy}``, one per node's request).
A single-host license is still written as version 1, so builds that predate clusters read it.

Base64 of the exact bytes, rather than JSON re-serialised for checking, means re-wrapping,
CRLF line ends or indentation picked up in an e-mail change nothing: all whitespace inside the
block is dropped before decoding. The signing context keeps a license signature from ever being
accepted for other data the same vendor key signs (deploy package manifests).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from inferpack.license._time import format_utc, parse_utc, utcnow
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import ComponentValue, LicenseRequest, components_to_json, parse_components
from inferpack.license.keys import key_id
from inferpack.names import is_deploy_name

LICENSE_FORMAT = "inferpack-license"
LICENSE_VERSION = 1
MULTI_HOST_VERSION = 2
TRIAL_DAYS = 30
SIGNING_CONTEXT = b"inferpack-license-v1\n"

_BEGIN = "-----BEGIN INFERPACK LICENSE-----"
_SIGNATURE = "-----SIGNATURE-----"
_END = "-----END INFERPACK LICENSE-----"


@dataclass(frozen=True)
class Limits:
    max_instances: int | None = None
    max_qps: float | None = None


@dataclass(frozen=True)
class MatchPolicy:
    """At least ``min_matches`` of the licensed components, and every GPU in ``require_gpus``."""

    min_matches: int
    require_gpus: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostBinding:
    """One licensed machine: its fingerprint components and how many of them must match."""

    components: Mapping[str, ComponentValue]
    policy: MatchPolicy


@dataclass(frozen=True)
class License:
    issue_id: str
    licensee: str
    deploy_names: tuple[str, ...]
    hosts: tuple[HostBinding, ...]  # a machine is licensed when it matches any one of them
    issued_at: datetime
    not_before: datetime
    not_after: datetime
    trial: bool
    clock_reset: bool  # support's one-shot reset of the clock guard (see clock.py)
    limits: Limits
    product_version: str
    key_id: str
    payload: bytes = field(repr=False)  # the exact signed bytes
    signature: bytes = field(repr=False)

    def validity(self) -> str:
        trial = " (trial)" if self.trial else ""
        return f"{format_utc(self.not_before)} to {format_utc(self.not_after)}{trial}"


def default_min_matches(total: int) -> int:
    """All components when there are three or fewer, else all but one.

    One replaced NIC or disk then keeps a license valid, while a cloned disk on another box (which
    keeps only machine-id and CPU model) fails. With few components there is no slack to give.
    """
    return total if total <= 3 else total - 1


def decode_armor(text: str) -> tuple[bytes, bytes]:
    """(payload, signature) from the armored block; LicenseError("malformed: ...") otherwise."""
    lines = [line.strip().lstrip("\ufeff") for line in text.splitlines()]
    for marker in (_BEGIN, _SIGNATURE, _END):
        if lines.count(marker) != 1:
            what = "no" if marker not in lines else "more than one"
            raise LicenseError(f"malformed license: {what} '{marker}' line")
    begin, middle, end = lines.index(_BEGIN), lines.index(_SIGNATURE), lines.index(_END)
    if not begin < middle < end:
        raise LicenseError("malformed license: armor lines out of order")

    def b64(part: list[str], what: str) -> bytes:
        try:
            return base64.b64decode("".join("".join(part).split()), validate=True)
        except binascii.Error:
            raise LicenseError(f"malformed license: the {what} is not valid base64") from None

    payload, signature = b64(lines[begin + 1 : middle], "payload"), b64(lines[middle + 1 : end], "signature")
    if not payload or len(signature) != 64:
        raise LicenseError("malformed license: empty payload or a signature that is not 64 bytes")
    return payload, signature


def check_signature(payload: bytes, signature: bytes, public_key: Ed25519PublicKey) -> None:
    """Raises LicenseError("bad signature: ...") unless ``public_key`` signed ``payload``."""
    try:
        public_key.verify(signature, SIGNING_CONTEXT + payload)
        return
    except InvalidSignature:
        pass
    expected = key_id(public_key)
    try:  # only to word the reason: nothing from an unverified payload is trusted
        claimed = json.loads(payload).get("key_id")
    except (ValueError, AttributeError):
        claimed = None
    if isinstance(claimed, str) and claimed != expected:
        raise LicenseError(f"bad signature: signed by another key (key id {claimed}, expected {expected})")
    raise LicenseError("bad signature: the license was altered after signing or is not from this vendor")


def verify_signature(lic: License, public_key: Ed25519PublicKey) -> None:
    check_signature(lic.payload, lic.signature, public_key)


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    # bool is an int subclass: a count or a limit must never read `true` as 1.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise LicenseError(f"malformed license: field {key!r} is missing or has the wrong type")
    return value


def _optional_positive(data: Mapping[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    if data.get(key) is None:
        return None
    # JSON writes 10.0 as 10: a float field accepts an int and reads it as a float.
    value = _get(data, key, (int, float) if kind is float else kind)
    if value <= 0:
        raise LicenseError(f"malformed license: {key!r} must be positive")
    return kind(value)


def _time_field(data: Mapping[str, Any], key: str) -> datetime:
    try:
        return parse_utc(_get(data, key, str))
    except ValueError:
        raise LicenseError(f"malformed license: {key!r} is not a UTC ISO-8601 time") from None


def _parse_host(data: Mapping[str, Any]) -> HostBinding:
    components = parse_components(data.get("components"), "malformed license")
    policy = _get(data, "policy", dict)
    min_matches = _get(policy, "min_matches", int)
    require_gpus = _get(policy, "require_gpus", list)
    if not 1 <= min_matches <= len(components) or not set(require_gpus) <= set(
        components.get("gpu_uuids", ())
    ):
        raise LicenseError("malformed license: the match policy does not fit the licensed components")
    return HostBinding(components, MatchPolicy(min_matches, tuple(require_gpus)))


def _parse_hosts(data: Mapping[str, Any]) -> tuple[HostBinding, ...]:
    if data["version"] == LICENSE_VERSION:
        return (_parse_host(data),)
    hosts = _get(data, "hosts", list)
    if not hosts or not all(isinstance(host, dict) for host in hosts):
        raise LicenseError("malformed license: 'hosts' must list at least one host object")
    return tuple(_parse_host(host) for host in hosts)


def parse_payload(payload: bytes, signature: bytes) -> License:
    """The License in ``payload``; says nothing about who signed it (``check_signature`` does)."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise LicenseError("malformed license: the payload is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != LICENSE_FORMAT:
        raise LicenseError(f"malformed license: not an {LICENSE_FORMAT!r} payload")
    if data.get("version") not in (LICENSE_VERSION, MULTI_HOST_VERSION):
        raise LicenseError(
            f"unsupported license format version {data.get('version')!r} "
            f"(this build reads {LICENSE_VERSION} and {MULTI_HOST_VERSION})"
        )
    names = _get(data, "deploy_names", list)
    if not names or not all(isinstance(n, str) and is_deploy_name(n) for n in names):
        raise LicenseError("malformed license: 'deploy_names' must list valid deploy names")
    limits = _get(data, "limits", dict)
    lic = License(
        issue_id=_get(data, "issue_id", str),
        licensee=_get(data, "licensee", str),
        deploy_names=tuple(names),
        hosts=_parse_hosts(data),
        issued_at=_time_field(data, "issued_at"),
        not_before=_time_field(data, "not_before"),
        not_after=_time_field(data, "not_after"),
        trial=_get(data, "trial", bool),
        clock_reset=_get(data, "clock_reset", bool),
        limits=Limits(
            _optional_positive(limits, "max_instances", int), _optional_positive(limits, "max_qps", float)
        ),
        product_version=_get(data, "product_version", str),
        key_id=_get(data, "key_id", str),
        payload=payload,
        signature=signature,
    )
    if lic.not_after < lic.not_before:
        raise LicenseError("malformed license: not_after is before not_before")
    return lic


def parse_license(text: str) -> License:
    """Parses an armored license; LicenseError with the reason for anything malformed."""
    return parse_payload(*decode_armor(text))


def _validity(now: datetime, days: int | None, until: date | None, trial: bool) -> tuple[datetime, datetime]:
    if trial and (days is not None or until is not None):
        raise ValueError(f"a trial license lasts {TRIAL_DAYS} days: give no days or until with it")
    if (days is None) == (until is None) and not trial:
        raise ValueError("give exactly one of days or until (or trial)")
    # Valid from the start of the issue day (UTC), so a customer clock a few hours behind the
    # vendor's does not see a fresh license as "not valid before".
    not_before = datetime.combine(now.date(), time(), UTC)
    if until is not None:
        not_after = datetime.combine(until, time(23, 59, 59), UTC)  # through the whole given day
        if not_after <= now:
            raise ValueError(f"the end date {until.isoformat()} is not in the future")
        return not_before, not_after
    span = TRIAL_DAYS if trial else days
    if span is None or span < 1:
        raise ValueError("days must be at least 1")
    return not_before, now.replace(microsecond=0) + timedelta(days=span)


def _host_json(
    request: LicenseRequest, *, gpu: bool, min_matches: int | None, what: str
) -> dict[str, object]:
    if not request.components:
        raise ValueError(f"{what} has no fingerprint components; nothing to bind the license to")
    if gpu and not request.components.get("gpu_uuids"):
        raise ValueError(f"a GPU license needs GPUs in {what}, and it lists none")
    total = len(request.components)
    required = default_min_matches(total) if min_matches is None else min_matches
    if not 1 <= required <= total:
        raise ValueError(f"min_matches must be between 1 and {total} (components in {what})")
    gpus = request.components.get("gpu_uuids", ()) if gpu else ()
    return {
        "components": components_to_json(request.components),
        "policy": {"min_matches": required, "require_gpus": list(gpus)},
    }


def _hosts_json(
    requests: Sequence[LicenseRequest], *, gpu: bool, min_matches: int | None
) -> list[dict[str, object]]:
    """One binding per request; the same machine twice is a vendor's slip (a node's request sent
    twice instead of another node's), so it is refused rather than silently merged."""
    if not requests:
        raise ValueError("give at least one fingerprint request")
    several = len(requests) > 1
    hosts: list[dict[str, object]] = []
    for number, request in enumerate(requests, 1):
        what = f"request {number}" if several else "the request"
        host = _host_json(request, gpu=gpu, min_matches=min_matches, what=what)
        if host["components"] in [h["components"] for h in hosts]:
            raise ValueError(f"{what} is the same machine as an earlier one")
        hosts.append(host)
    return hosts


def issue_license(
    private_key: Ed25519PrivateKey,
    request: LicenseRequest | Sequence[LicenseRequest],
    deploy_names: Sequence[str],
    *,
    days: int | None = None,
    until: date | None = None,
    trial: bool = False,
    max_instances: int | None = None,
    max_qps: float | None = None,
    gpu: bool = False,
    licensee: str = "",
    min_matches: int | None = None,
    clock_reset: bool = False,
    now: datetime | None = None,
) -> str:
    """Signs a license for the machine in ``request`` (or for each of several machines, in a list of
    requests: a cluster's nodes); ValueError for arguments that make no sense.

    A trial lasts TRIAL_DAYS. ``gpu`` binds each machine to every GPU in its request (they must all
    be present at verification); ``min_matches`` applies to each machine. ``clock_reset`` lets
    support clear a clock-rollback lock once.
    """
    now = now or utcnow()
    not_before, not_after = _validity(now, days, until, trial)
    bad_names = [n for n in deploy_names if not is_deploy_name(n)]
    if not deploy_names or bad_names:
        raise ValueError(
            f"invalid deploy name(s) {bad_names or '(none given)'}: letters, digits, '_.-', up to 64"
        )
    requests = [request] if isinstance(request, LicenseRequest) else list(request)
    hosts = _hosts_json(requests, gpu=gpu, min_matches=min_matches)
    for name, limit in (("max_instances", max_instances), ("max_qps", max_qps)):
        if limit is not None and limit <= 0:
            raise ValueError(f"{name} must be positive")
    if not licensee.isprintable() or len(licensee) > 200:
        raise ValueError("licensee must be one line of at most 200 characters")
    payload: dict[str, object] = {
        "format": LICENSE_FORMAT,
        "version": LICENSE_VERSION if len(hosts) == 1 else MULTI_HOST_VERSION,
        "issue_id": str(uuid.uuid4()),
        "licensee": licensee,
        "deploy_names": list(dict.fromkeys(deploy_names)),
        **(hosts[0] if len(hosts) == 1 else {"hosts": hosts}),
        "issued_at": format_utc(now),
        "not_before": format_utc(not_before),
        "not_after": format_utc(not_after),
        "trial": trial,
        "clock_reset": clock_reset,
        "limits": {"max_instances": max_instances, "max_qps": max_qps},
        "product_version": requests[0].product_version,
        "key_id": key_id(private_key.public_key()),
    }
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return _armor(data, private_key.sign(SIGNING_CONTEXT + data))


def _armor(payload: bytes, signature: bytes) -> str:
    lic = parse_payload(payload, signature)  # also proves the issued payload reads back

    def wrap(data: bytes) -> list[str]:
        text = base64.b64encode(data).decode("ascii")
        return [text[i : i + 64] for i in range(0, len(text), 64)]

    header = [
        f"# inferpack license for {lic.licensee or '(no licensee)'}",
        f"# deploy names: {', '.join(lic.deploy_names)}",
        *([f"# licensed hosts: {len(lic.hosts)}"] if len(lic.hosts) > 1 else []),
        f"# valid {lic.validity()}",
        f"# issue id {lic.issue_id}, vendor key {lic.key_id}",
        "# These comment lines are informational; only the signed block below counts.",
    ]
    return "\n".join([*header, _BEGIN, *wrap(payload), _SIGNATURE, *wrap(signature), _END, ""])
