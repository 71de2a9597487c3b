"""Hashed components, the request file, and a container's view through a host snapshot."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import (
    COMPONENT_KINDS,
    Fingerprint,
    collect,
    hash_component,
    parse_request,
    read_request,
    write_request,
)

from ._fakes import GPU_UUIDS, MACHINE_ID, NIC_MACS, PRODUCT_UUID, T0, FakeHost


def test_every_component_is_found_and_hashed(fingerprint: Fingerprint) -> None:
    assert fingerprint.found == list(COMPONENT_KINDS)
    assert fingerprint.missing == []
    assert fingerprint.components["machine_id"] == hash_component("machine_id", MACHINE_ID)
    # UUIDs and MACs are compared case-insensitively: hashed lower-case.
    assert fingerprint.components["product_uuid"] == hash_component("product_uuid", PRODUCT_UUID.lower())
    assert fingerprint.components["nic_macs"] == tuple(
        sorted(hash_component("nic_macs", m) for m in NIC_MACS)
    )
    assert fingerprint.components["gpu_uuids"] == (hash_component("gpu_uuids", GPU_UUIDS[0].lower()),)
    assert set(fingerprint.sources.values()) == {"live"}
    assert fingerprint.summary["nic_count"] == 2
    assert fingerprint.summary["gpu_count"] == 1


def test_the_same_value_hashes_differently_per_kind() -> None:
    assert hash_component("machine_id", "x") != hash_component("disk_serial", "x")
    assert re.fullmatch(r"[0-9a-f]{64}", hash_component("cpu_model", "x"))


def test_missing_dmi_and_gpus_are_absent_components(host: FakeHost) -> None:
    (host.root / "sys/class/dmi/id/product_uuid").unlink()
    (host.root / "sys/class/dmi/id/board_serial").unlink()
    fp = collect(host.root, gpu_source=list)
    assert fp.missing == ["product_uuid", "board_serial", "gpu_uuids"]
    assert "gpu_uuids" not in fp.components


def test_request_file_holds_hashes_never_raw_values(tmp_path: Path, fingerprint: Fingerprint) -> None:
    path = tmp_path / "request.json"
    written = write_request(path, fingerprint, now=T0)
    text = path.read_text()
    for raw in (MACHINE_ID, PRODUCT_UUID, NIC_MACS[0], GPU_UUIDS[0]):
        assert raw.lower() not in text.lower()
    assert written["created"] == "2030-06-01T12:00:00Z"
    assert written["found"] == list(COMPONENT_KINDS)
    request = read_request(path)
    assert request.components == fingerprint.components
    assert request.product_version == written["product_version"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not valid JSON"),
        ("[]", "not an inferpack fingerprint file"),
        ('{"format": "inferpack-fingerprint", "version": 9}', "unsupported version 9"),
        (
            '{"format": "inferpack-fingerprint", "version": 1, "components": []}',
            "'components' must be an object",
        ),
        (
            '{"format": "inferpack-fingerprint", "version": 1, "components": {"mac": "00"}}',
            "unknown fingerprint",
        ),
        ('{"format": "inferpack-fingerprint", "version": 1, "components": {"cpu_model": "abc"}}', "64-hex"),
        (
            '{"format": "inferpack-fingerprint", "version": 1, "components": {"nic_macs": []}}',
            "non-empty list",
        ),
        ('{"format": "inferpack-fingerprint", "version": 1, "components": {}, "summary": 3}', "'summary'"),
    ],
)
def test_malformed_requests_say_why(text: str, reason: str) -> None:
    with pytest.raises(LicenseError, match=re.escape(reason)):
        parse_request(text)


def test_unreadable_request_file(tmp_path: Path) -> None:
    with pytest.raises(LicenseError, match="no license request at"):
        read_request(tmp_path / "absent.json")


@pytest.fixture
def container_root(tmp_path: Path) -> FakeHost:
    """What a container sees at /host: the host's machine-id and DMI mounted read-only, nothing else,
    plus its own virtual NIC where a careless reader might look."""
    view = FakeHost(tmp_path / "container-host-view")
    view.write("etc/machine-id", MACHINE_ID + "\n")
    view.write("sys/class/dmi/id/product_uuid", PRODUCT_UUID + "\n")
    view.nic("eth0", "02:42:ac:11:00:02", physical=False)
    return view


def test_a_container_counts_the_host_through_the_snapshot(
    tmp_path: Path, fingerprint: Fingerprint, container_root: FakeHost
) -> None:
    snapshot = tmp_path / "host-fingerprint.json"
    write_request(snapshot, fingerprint)
    seen = collect(container_root.root, snapshot, gpu_source=list)
    assert seen.components == fingerprint.components
    assert seen.sources["machine_id"] == seen.sources["product_uuid"] == "live"
    assert seen.sources["nic_macs"] == seen.sources["disk_serial"] == seen.sources["gpu_uuids"] == "snapshot"
    assert seen.summary["hostname"] == fingerprint.summary["hostname"]


def test_live_components_override_a_stale_or_copied_snapshot(
    tmp_path: Path, fingerprint: Fingerprint, container_root: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = tmp_path / "host-fingerprint.json"
    write_request(snapshot, fingerprint)
    container_root.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")  # another box
    with caplog.at_level(logging.WARNING, logger="inferpack.license"):
        seen = collect(container_root.root, snapshot, gpu_source=lambda: ["GPU-other"])
    assert seen.components["machine_id"] == hash_component("machine_id", "0123456789abcdef0123456789abcdef")
    assert seen.components["gpu_uuids"] == (hash_component("gpu_uuids", "gpu-other"),)
    assert seen.sources["gpu_uuids"] == "live"
    assert "machine_id read live differs from the snapshot" in caplog.text
    assert "0123456789abcdef" not in caplog.text  # never log raw identifiers


def test_a_missing_or_damaged_snapshot_is_an_error_not_a_silent_fallback(
    tmp_path: Path, container_root: FakeHost
) -> None:
    with pytest.raises(LicenseError, match="no host fingerprint snapshot at"):
        collect(container_root.root, tmp_path / "absent.json", gpu_source=list)
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({"format": "inferpack-fingerprint", "version": 1, "components": {"x": 1}}))
    with pytest.raises(LicenseError, match=r"host fingerprint snapshot .*unknown fingerprint component"):
        collect(container_root.root, damaged, gpu_source=list)


def test_collect_on_this_real_machine_does_not_fail() -> None:
    fp = collect("/", gpu_source=list)
    assert set(fp.found) | set(fp.missing) == set(COMPONENT_KINDS)
