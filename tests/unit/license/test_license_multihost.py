"""A license for several hosts (a cluster's nodes): each machine is matched against each host alone."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import Fingerprint, LicenseRequest, collect, write_request
from inferpack.license.licfile import SIGNING_CONTEXT, decode_armor, issue_license, parse_license
from inferpack.license.verify import verify_license

from ._fakes import T0, FakeHost, armored, build_host
from .conftest import Cli

NOW = T0 + timedelta(days=10)


def _node(root: Path, machine_id: str, disk: str, mac: str) -> FakeHost:
    """A second box of the same model: same CPU, its own machine-id, DMI ids, disk and NICs."""
    node = build_host(root)
    node.write("etc/machine-id", machine_id + "\n")
    node.write("sys/class/dmi/id/product_uuid", f"{machine_id[:8]}-0000-4000-8000-{machine_id[:12]}\n")
    node.write("sys/class/dmi/id/board_serial", f"BOARD-{machine_id[:6]}\n")
    node.write("sys/block/nvme0n1/device/serial", disk + "\n")
    node.write("sys/class/net/eno1/address", mac + "0\n")
    node.write("sys/class/net/enp2s0/address", mac + "1\n")
    return node


@pytest.fixture
def nodes(tmp_path: Path, host: FakeHost) -> list[Fingerprint]:
    """Three machines: the fixture host and two more; each with its GPU."""
    second = _node(tmp_path / "node2", "5f0c2a9e81d34b7f9a61c0de42b7e313", "DISK-NODE-2", "3c:ec:ef:22:22:2")
    third = _node(tmp_path / "node3", "8e41b07c3d2f4a5b96e1f0a7c4d3b2e1", "DISK-NODE-3", "3c:ec:ef:33:33:3")
    return [collect(h.root, gpu_source=lambda g=f"GPU-{i}": [g]) for i, h in enumerate((host, second, third))]


def _request(fp: Fingerprint) -> LicenseRequest:
    return LicenseRequest(fp.components, fp.summary, "0.1.0", "2030-06-01T12:00:00Z")


def _issue(key: Ed25519PrivateKey, fps: list[Fingerprint], **options: object) -> str:
    return issue_license(key, [_request(fp) for fp in fps], ["cats"], days=365, now=T0, **options)  # type: ignore[arg-type]


def test_each_listed_host_verifies_and_an_unlisted_one_does_not(
    vendor_key: Ed25519PrivateKey, nodes: list[Fingerprint]
) -> None:
    text = _issue(vendor_key, nodes[:2], max_instances=4)
    lic = parse_license(text)
    assert len(lic.hosts) == 2 and lic.limits.max_instances == 4
    assert "# licensed hosts: 2" in text
    for number, fp in enumerate(nodes[:2], 1):
        state = verify_license(text, vendor_key.public_key(), "cats", fp, NOW)
        assert state.valid, state.reason
        assert state.summary()["matched_components"] == f"7/7 (host {number} of 2)"
    refused = verify_license(text, vendor_key.public_key(), "cats", nodes[2], NOW)
    assert refused.reason == (
        "wrong machine: 1 of 7 fingerprint components match, at least 6 required "
        "(closest of 2 licensed hosts: host 1)"
    )  # only the CPU model: the nodes are the same model of box


def test_components_of_two_licensed_hosts_are_never_pooled(
    vendor_key: Ed25519PrivateKey, nodes: list[Fingerprint]
) -> None:
    """A machine with half of node 1's identity and half of node 2's matches neither."""
    first, second = nodes[0].components, nodes[1].components
    kinds = list(first)
    chimera = {kind: (first if i % 2 else second)[kind] for i, kind in enumerate(kinds)}
    fp = Fingerprint(chimera, {}, dict.fromkeys(chimera, "live"))
    state = verify_license(_issue(vendor_key, nodes[:2]), vendor_key.public_key(), "cats", fp, NOW)
    assert not state.valid
    # pooled, all 7 would match; alone, node 2 has 4 of them plus the CPU model both share
    assert state.reason.startswith("wrong machine: 5 of 7 fingerprint components match, at least 6 required")


def test_gpu_binding_and_min_matches_apply_to_each_host(
    vendor_key: Ed25519PrivateKey, nodes: list[Fingerprint]
) -> None:
    lic = parse_license(_issue(vendor_key, nodes[:2], gpu=True, min_matches=7))
    assert [h.policy.min_matches for h in lic.hosts] == [7, 7]
    assert [h.policy.require_gpus for h in lic.hosts] == [h.components["gpu_uuids"] for h in lic.hosts]
    node2_without_gpu = Fingerprint(
        {k: v for k, v in nodes[1].components.items() if k != "gpu_uuids"}, {}, {}
    )
    text = _issue(vendor_key, nodes[:2], gpu=True)
    state = verify_license(text, vendor_key.public_key(), "cats", node2_without_gpu, NOW)
    assert (
        state.reason
        == "wrong machine: 0 of the 1 licensed GPU(s) present (closest of 2 licensed hosts: host 2)"
    )


def test_one_host_is_still_the_version_1_payload(
    vendor_key: Ed25519PrivateKey, nodes: list[Fingerprint]
) -> None:
    """Builds that predate clusters keep reading every single-host license."""
    single = json.loads(decode_armor(_issue(vendor_key, nodes[:1]))[0])
    assert single["version"] == 1 and "hosts" not in single and "components" in single
    several = json.loads(decode_armor(_issue(vendor_key, nodes))[0])
    assert several["version"] == 2 and "components" not in several and len(several["hosts"]) == 3


def test_the_same_machine_twice_is_refused(vendor_key: Ed25519PrivateKey, nodes: list[Fingerprint]) -> None:
    with pytest.raises(ValueError, match="request 3 is the same machine as an earlier one"):
        _issue(vendor_key, [nodes[0], nodes[1], nodes[0]])
    with pytest.raises(ValueError, match="request 2 has no fingerprint components"):
        _issue(vendor_key, [nodes[0], Fingerprint({}, {}, {})])


@pytest.mark.parametrize(
    ("hosts", "reason"),
    [
        ([], "'hosts' must list at least one host object"),
        (["not a host"], "'hosts' must list at least one host object"),
        ([{"components": {}, "policy": {"min_matches": 1, "require_gpus": []}}], "policy does not fit"),
    ],
)
def test_a_signed_but_malformed_hosts_list_is_refused(
    vendor_key: Ed25519PrivateKey, nodes: list[Fingerprint], hosts: list[object], reason: str
) -> None:
    payload = json.loads(decode_armor(_issue(vendor_key, nodes[:2]))[0])
    payload["hosts"] = hosts
    data = json.dumps(payload).encode()
    with pytest.raises(LicenseError, match=reason):
        parse_license(armored(data, vendor_key.sign(SIGNING_CONTEXT + data)))


def test_issue_with_several_requests_from_the_cli(
    tmp_path: Path, cli: Cli, vendor: Path, request_file: Path, nodes: list[Fingerprint]
) -> None:
    second = tmp_path / "node2.json"
    write_request(second, nodes[1])
    out_file = tmp_path / "cluster.lic"
    code, out, err = cli(
        "license", "issue", "--key", vendor / "vendor.key", "--request", request_file, "--request", second,
        "--deploy", "cats", "--days", "30", "--max-instances", "6", "--out", out_file,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {out_file}: deploy cats, 2 hosts, valid ")
    assert len(parse_license(out_file.read_text()).hosts) == 2
    # node 2's GPU reads differently through the CLI's GPU source: 6 of 7, still licensed
    code, out, _ = cli("license", "show", out_file, "--public-key", vendor / "vendor.pub", "--deploy", "cats",
                       "--root", tmp_path / "node2")  # fmt: skip
    assert code == 0
    assert "this machine:   6 of 7 components match (licensed host 2)" in out
    assert "components 2:" in out and "policy 2:       at least 6 matching" in out

    twice = ("--request", request_file, "--request", request_file)
    code, out, err = cli(
        "license", "issue", "--key", vendor / "vendor.key", *twice, "--deploy", "cats", "--days", "30",
        "--out", tmp_path / "x",
    )  # fmt: skip
    assert code == 1 and "request 2 is the same machine as an earlier one" in err
    assert not (tmp_path / "x").exists()
