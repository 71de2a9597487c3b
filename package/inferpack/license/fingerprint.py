"""The machine fingerprint: hashed hardware components, collected live or from a host snapshot.

Trust model, honestly:

* Components are HMAC-SHA256 hashes under a fixed application key, so a request or a license
  never carries a raw machine-id or serial, and the hashes mean nothing to other software.
  The key ships in this code: it is a namespace, not a secret, and hides nothing from someone
  who holds the raw value and this code.
* On the host, ``collect("/")`` reads everything live.
* In a container the container's own MAC, hostname and ``/etc/machine-id`` change on every
  recreate and must never count: the docker runtime mounts the host's own sources read-only
  below ``/host`` (machine-id, /sys, the CPU, the host init's mounts, /dev/disk) and the server
  calls ``collect("/host")``. A server never reads a written snapshot: a file the operator can
  write could say anything. ``snapshot`` is for inspection tools (``license show``).
* Whoever has root on the host can still write a snapshot or mount files that say anything; no
  offline scheme on a customer's machine stops a determined administrator. This keeps honest
  customers honest and makes casual copying (another box, a cloned VM) fail with a clear reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import platform
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from inferpack import __version__
from inferpack.fileio import write_atomic
from inferpack.license import sources
from inferpack.license._io import read_text
from inferpack.license._time import format_utc, utcnow
from inferpack.license.errors import LicenseError
from inferpack.license.sources import GpuSource

log = logging.getLogger("inferpack.license")

APP_KEY = b"inferpack/license/v1/fingerprint"
"""Keys the component hashes to this product: a namespace, not a secret (see the module doc)."""

COMPONENT_KINDS = (
    "machine_id", "product_uuid", "board_serial", "nic_macs", "disk_serial", "cpu_model", "gpu_uuids",
)  # fmt: skip
LIST_KINDS = frozenset({"nic_macs", "gpu_uuids"})
"""Kinds a machine can have several of; they match when any one hash is shared."""

HOST_SOURCES = (
    ("/etc/machine-id", "etc/machine-id"),
    ("/sys", "sys"),  # DMI, NICs, disks and their serials
    ("/proc/cpuinfo", "proc/cpuinfo"),
    ("/proc/1/mountinfo", "proc/self/mountinfo"),  # the host init's mounts: which disk is root
    ("/dev/disk", "dev/disk"),
)
"""Where a container reads the host's fingerprint live: (host path, path below its host root),
each mounted read-only by the docker runtime and the Kubernetes export."""

REQUEST_FORMAT = "inferpack-fingerprint"
REQUEST_VERSION = 1

ComponentValue = str | tuple[str, ...]
_HASH = re.compile(r"[0-9a-f]{64}")


def hash_component(kind: str, value: str) -> str:
    """HMAC-SHA256 of a raw value, keyed by the app key and the kind (equal serials of two kinds differ)."""
    return hmac.new(APP_KEY + b"/" + kind.encode(), value.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """Component kind -> hash (or sorted hashes for NICs and GPUs), plus a host summary that
    identifies nothing (hostname, counts) and where each component came from ("live"/"snapshot")."""

    components: Mapping[str, ComponentValue]
    summary: Mapping[str, str | int]
    sources: Mapping[str, str]

    @property
    def found(self) -> list[str]:
        return [kind for kind in COMPONENT_KINDS if kind in self.components]

    @property
    def missing(self) -> list[str]:
        return [kind for kind in COMPONENT_KINDS if kind not in self.components]


def components_to_json(components: Mapping[str, ComponentValue]) -> dict[str, str | list[str]]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in components.items()}


def parse_components(data: object, what: str) -> dict[str, ComponentValue]:
    """Validates a ``{kind: hash | [hashes]}`` object from a request, snapshot or license."""
    if not isinstance(data, dict):
        raise LicenseError(f"{what}: 'components' must be an object")
    parsed: dict[str, ComponentValue] = {}
    for kind, value in data.items():
        if kind not in COMPONENT_KINDS:
            raise LicenseError(f"{what}: unknown fingerprint component {kind!r}")
        values = value if kind in LIST_KINDS and isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and _HASH.fullmatch(v) for v in values):
            shape = "a non-empty list of" if kind in LIST_KINDS else "a"
            raise LicenseError(f"{what}: component {kind!r} must be {shape} 64-hex-digit hash")
        parsed[kind] = tuple(sorted(set(values))) if kind in LIST_KINDS else values[0]
    return parsed


def _live_components(root: Path, gpu_source: GpuSource) -> dict[str, ComponentValue]:
    raw: dict[str, str | list[str] | None] = {
        "machine_id": sources.machine_id(root),
        "product_uuid": (sources.dmi(root, "product_uuid") or "").lower() or None,
        "board_serial": sources.dmi(root, "board_serial"),
        "nic_macs": sources.physical_nic_macs(root),
        "disk_serial": sources.root_disk_serial(root),
        "cpu_model": sources.cpu_model(root),
        "gpu_uuids": [uuid.lower() for uuid in gpu_source()],
    }
    components: dict[str, ComponentValue] = {}
    for kind, value in raw.items():
        if isinstance(value, list):
            if value:
                components[kind] = tuple(sorted({hash_component(kind, v) for v in value}))
        elif value:
            components[kind] = hash_component(kind, value)
    return components


def _summary(components: Mapping[str, ComponentValue], hostname: str, system: str) -> dict[str, str | int]:
    def count(kind: str) -> int:
        return len(components.get(kind, ()))

    return {
        "hostname": hostname,
        "platform": system,
        "nic_count": count("nic_macs"),
        "gpu_count": count("gpu_uuids"),
        "components_found": len(components),
    }


def collect(
    root: Path | str = "/", snapshot: Path | None = None, gpu_source: GpuSource | None = None
) -> Fingerprint:
    """This machine's fingerprint: components read live below ``root``, over a host snapshot.

    ``gpu_source`` defaults to NVML/``nvidia-smi``; a missing or damaged snapshot raises
    LicenseError, because a container that silently fell back to its own identifiers would
    fail later with a misleading "wrong machine".
    """
    live = _live_components(Path(root), gpu_source or sources.nvidia_gpu_uuids)
    if snapshot is None:
        summary = _summary(live, socket.gethostname(), f"{platform.system()}-{platform.machine()}")
        return Fingerprint(live, summary, dict.fromkeys(live, "live"))
    host = load_snapshot(snapshot)
    for kind in live.keys() & host.components.keys():
        if live[kind] != host.components[kind]:
            log.warning("fingerprint component %s read live differs from the snapshot %s; "
                        "the live value counts", kind, snapshot)  # fmt: skip
    components = {**host.components, **live}
    summary = _summary(
        components, str(host.summary.get("hostname", "")), str(host.summary.get("platform", ""))
    )
    origin = {kind: "live" if kind in live else "snapshot" for kind in components}
    return Fingerprint(components, summary, origin)


def write_request(path: Path, fingerprint: Fingerprint, now: datetime | None = None) -> dict[str, object]:
    """Writes the license request (also the host snapshot) atomically and returns what it wrote:
    hashes, host summary, product version, which components were found and which are missing."""
    document = {
        "format": REQUEST_FORMAT,
        "version": REQUEST_VERSION,
        "product": "inferpack",
        "product_version": __version__,
        "created": format_utc(now or utcnow()),
        "components": components_to_json(fingerprint.components),
        "found": fingerprint.found,
        "missing": fingerprint.missing,
        "summary": dict(fingerprint.summary),
    }
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode())
    return document


@dataclass(frozen=True)
class LicenseRequest:
    """A parsed request file, as the vendor's ``license issue`` reads it."""

    components: Mapping[str, ComponentValue]
    summary: Mapping[str, str | int]
    product_version: str
    created: str


def parse_request(text: str, what: str = "license request") -> LicenseRequest:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LicenseError(f"{what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != REQUEST_FORMAT:
        raise LicenseError(f"{what} is not an inferpack fingerprint file (format {REQUEST_FORMAT!r})")
    if data.get("version") != REQUEST_VERSION:
        raise LicenseError(f"{what} has unsupported version {data.get('version')!r}")
    summary = data.get("summary", {})
    if not isinstance(summary, dict) or not all(isinstance(v, str | int) for v in summary.values()):
        raise LicenseError(f"{what}: 'summary' must be an object of strings and numbers")
    return LicenseRequest(
        components=parse_components(data.get("components"), what),
        summary=summary,
        product_version=str(data.get("product_version", "")),
        created=str(data.get("created", "")),
    )


def read_request(path: Path, what: str = "license request") -> LicenseRequest:
    return parse_request(read_text(path, what), f"{what} {path}")


def load_snapshot(path: Path) -> Fingerprint:
    """A host snapshot (a request file the installer wrote on the host) as a Fingerprint."""
    request = read_request(path, "host fingerprint snapshot")
    return Fingerprint(request.components, request.summary, dict.fromkeys(request.components, "snapshot"))
