"""The report's layout, the CLI wiring, and a support bundle of a service laid out by hand:
what it holds, and that keys and license blocks never get in, even quoted in a file."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.cli import main
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.settings import ServiceSettings, save_settings
from inferpack.doctor.bundle import scrub, write_bundle
from inferpack.doctor.context import Options
from inferpack.doctor.report import summary, text_lines
from inferpack.doctor.result import HOST, failed, passed, warned
from inferpack.doctor.runner import Report, run
from inferpack.license.fingerprint import LicenseRequest, hash_component
from inferpack.license.keys import public_pem
from inferpack.license.licfile import issue_license

PEM = (
    Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode()
)


def test_text_report_one_line_per_check_next_step_under_warn_and_fail(tmp_path: Path) -> None:
    report = Report(
        [
            passed(HOST, "memory", "20 GiB available"),
            warned("cats", "gpu", "no NVIDIA driver", "nothing to do", ("evidence line",)),
            failed("cats", "container", "inferpack-cats-front: exited", "bash start-1.sh"),
        ],
        ["cats"],
    )
    lines = text_lines(report, Options(tmp_path))
    assert lines[1] == "PASS  host  memory       20 GiB available"
    assert lines[2] == "WARN  cats  gpu          no NVIDIA driver"
    assert lines[3].strip() == "-> nothing to do" and lines[4].strip() == "|  evidence line"
    assert lines[5] == "FAIL  cats  container    inferpack-cats-front: exited"
    assert lines[6].strip() == "-> bash start-1.sh"
    assert lines[-1] == summary(report)
    assert summary(report).startswith("summary: 1 PASS, 1 WARN, 1 FAIL (1 service(s): cats)")
    assert not report.ok


def test_scrub_removes_private_keys_and_license_blocks() -> None:
    text = f"before\n{PEM}\n-----BEGIN INFERPACK LICENSE-----\nabc\n-----END INFERPACK LICENSE-----\nafter"
    scrubbed = scrub(text)
    assert "PRIVATE KEY" not in scrubbed and "abc" not in scrubbed
    assert scrubbed.startswith("before\n[private key removed]") and scrubbed.endswith("after")


def test_doctor_verb_on_an_empty_work_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--work-root", str(tmp_path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert any(r["check"] == "services" and r["status"] == "FAIL" for r in out["results"])


def test_bundle_of_a_service_holds_no_secret(tmp_path: Path) -> None:
    layout = ServiceLayout(tmp_path / "work", "cats")
    save_settings(layout, ServiceSettings(name="cats", runtime="process", port=8080))
    key = Ed25519PrivateKey.generate()
    layout.license_dir.mkdir()
    layout.vendor_key.write_bytes(public_pem(key.public_key()))
    request = LicenseRequest({"machine_id": hash_component("machine_id", "m")}, {}, "0.1.0", "")
    license_text = issue_license(key, request, ["cats"], days=30)
    layout.license_file.write_text(license_text)
    (layout.home / "vendor.key").write_text(PEM)  # a key left where it must never be
    (layout.versions / "1.0.0").mkdir(parents=True)
    (layout.versions / "1.0.0" / "model.json").write_text(json.dumps({"quoted": PEM}))
    (layout.versions / "1.0.0" / "model.onnx").write_bytes(b"WEIGHTS" * 100)
    opts = Options(layout.root)
    target = tmp_path / "out" / "support.tar.gz"
    write_bundle(target, run(opts), opts)
    with tarfile.open(target) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert {"README.txt", "results.txt", "results.json", "versions.json", "fingerprint-request.json",
            "services/cats/settings.json", "services/cats/model/1.0.0/model.json",
            "services/cats/license-summary.json"} <= set(files)  # fmt: skip
    signature = "".join(license_text.split("-----SIGNATURE-----")[1].split("-----END")[0].split())
    for name, data in files.items():
        assert b"PRIVATE KEY" not in data and b"WEIGHTS" not in data, name
        assert signature[:40].encode() not in data and b"INFERPACK LICENSE" not in data, name
    assert json.loads(files["services/cats/license-summary.json"])["licensee"] == ""
