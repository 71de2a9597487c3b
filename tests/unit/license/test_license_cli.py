"""The license verbs end to end through their handlers: keygen -> fingerprint -> issue -> show."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inferpack.license import sources
from inferpack.license.licfile import parse_license

from ._fakes import FakeHost
from .conftest import Cli


def _one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err.strip()


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path, cli: Cli) -> None:
    code, out, err = cli("license", "keygen", "--out", tmp_path / "k", "--name", "acme")
    assert (code, err) == (0, "")
    assert stat.S_IMODE((tmp_path / "k" / "acme.key").stat().st_mode) == 0o600
    assert "key id" in out
    code, _, err = cli("license", "keygen", "--out", tmp_path / "k", "--name", "acme")
    assert code == 1
    assert (
        _one_line(err)
        == f"inferpack license keygen: {tmp_path / 'k' / 'acme.key'} already exists; refusing to overwrite it"
    )


@pytest.mark.parametrize("marker", [".git", "manifest.json"])
def test_keygen_refuses_a_repository_or_package(tmp_path: Path, cli: Cli, marker: str) -> None:
    (tmp_path / "repo" / marker).mkdir(parents=True)
    code, _, err = cli("license", "keygen", "--out", tmp_path / "repo" / "keys")
    assert code == 1
    assert "refusing to write a private key under" in _one_line(err)
    assert not (tmp_path / "repo" / "keys").exists()


def test_fingerprint_says_what_was_found(tmp_path: Path, cli: Cli, host: FakeHost) -> None:
    (host.root / "sys/class/dmi/id/product_uuid").unlink()
    code, out, _ = cli("fingerprint", "--root", host.root)
    assert code == 0
    assert "product_uuid  missing" in out
    assert "nic_macs      found (2, live)" in out
    assert "6 of 7 components found" in out
    assert "pass --out FILE" in out


def test_fingerprint_of_an_empty_root_fails(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "nvidia_gpu_uuids", list)
    code, _, err = cli("fingerprint", "--root", tmp_path, "--out", tmp_path / "req.json")
    assert code == 1
    assert "no fingerprint component is readable here" in _one_line(err)
    assert not (tmp_path / "req.json").exists()


def test_keygen_fingerprint_issue_show(
    tmp_path: Path, cli: Cli, vendor: Path, request_file: Path, host: FakeHost
) -> None:
    key, pub, lic = vendor / "vendor.key", vendor / "vendor.pub", tmp_path / "acme.lic"
    code, out, err = cli(
        "license", "issue", "--key", key, "--request", request_file, "--deploy", "cats,dogs", "--days", "30",
        "--max-qps", "12.5", "--max-instances", "3", "--gpu", "--licensee", "ACME Corp", "--out", lic,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {lic}: deploy cats, dogs, valid ")
    issued = parse_license(lic.read_text())
    assert (issued.limits.max_qps, issued.limits.max_instances, issued.licensee) == (12.5, 3, "ACME Corp")
    assert issued.hosts[0].policy.require_gpus

    code, out, err = cli("license", "show", lic, "--public-key", pub, "--deploy", "dogs", "--root", host.root)
    assert (code, err) == (0, "")
    assert "licensee:       ACME Corp" in out
    assert "this machine:   7 of 7 components match" in out
    assert "verifies here:  yes" in out

    code, out, _ = cli("license", "show", lic, "--public-key", pub, "--deploy", "birds", "--root", host.root)
    assert code == 1
    assert "verifies here:  no: not licensed for deploy name 'birds' (licensed: cats, dogs)" in out

    code, out, _ = cli("license", "show", lic, "--root", tmp_path / "elsewhere")
    assert code == 0
    assert "this machine:   wrong machine: 1 of 7 fingerprint components match, at least 6 required" in out
    assert "signature not checked" in out


def test_trial_license_from_the_cli(tmp_path: Path, cli: Cli, vendor: Path, request_file: Path) -> None:
    code, out, _ = cli(
        "license", "issue", "--key", vendor / "vendor.key", "--request", request_file, "--deploy", "cats",
        "--trial", "--out", tmp_path / "trial.lic",
    )  # fmt: skip
    assert code == 0
    assert "(trial)" in out
    assert parse_license((tmp_path / "trial.lic").read_text()).trial


@pytest.mark.parametrize(
    "extra",
    [
        ["--days", "3", "--trial"],  # a trial has its own length
        ["--days", "3", "--until", "2031-01-01"],
        [],  # no length at all
        ["--until", "31/01/2031"],
        ["--days", "three"],
        ["--frobnicate"],
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    cli: Cli,
    vendor: Path,
    request_file: Path,
    extra: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(
            "license", "issue", "--key", vendor / "vendor.key", "--request", request_file, "--deploy", "cats",
            "--out", tmp_path / "x.lic", *extra,
        )  # fmt: skip
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--request": "absent.json"}, "no license request at"),
        ({"--key": "absent.key"}, "cannot read private key"),
        ({"--days": None, "--until": "2000-01-01"}, "the end date 2000-01-01 is not in the future"),
        ({"--deploy": "bad name"}, "invalid deploy name"),
        ({"--days": "0"}, "days must be at least 1"),
        ({"--out": "exists.lic"}, "exists.lic already exists; refusing to overwrite it"),
        ({"--out": "no-such-dir/x.lic"}, "no-such-dir: no such folder (create it first)"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, cli: Cli, vendor: Path, request_file: Path, change: dict[str, str | None], message: str
) -> None:
    (tmp_path / "exists.lic").write_text("keep me")
    options: dict[str, str | Path | None] = {
        "--key": vendor / "vendor.key", "--request": request_file, "--deploy": "cats", "--days": "30",
        "--out": tmp_path / "new.lic",
    }  # fmt: skip
    for flag, value in change.items():
        options[flag] = tmp_path / value if flag in ("--request", "--key", "--out") and value else value
    argv = [part for flag, value in options.items() if value is not None for part in (flag, value)]
    code, _, err = cli("license", "issue", *argv)
    assert code == 1
    line = _one_line(err)
    assert line.startswith("inferpack license issue: ")
    assert message in line
    assert (tmp_path / "exists.lic").read_text() == "keep me"


def test_show_of_a_missing_or_malformed_file(tmp_path: Path, cli: Cli, host: FakeHost) -> None:
    code, _, err = cli("license", "show", tmp_path / "absent.lic", "--root", host.root)
    assert code == 1
    assert _one_line(err) == f"inferpack license show: no license file at {tmp_path / 'absent.lic'}"
    (tmp_path / "binary.lic").write_bytes(b"\xff\xfe\x00")
    code, _, err = cli("license", "show", tmp_path / "binary.lic", "--root", host.root)
    assert (code, _one_line(err)) == (
        1,
        f"inferpack license show: the license file {tmp_path / 'binary.lic'} is not a text file",
    )
    (tmp_path / "bad.lic").write_text("hello")
    code, _, err = cli("license", "show", tmp_path / "bad.lic", "--root", host.root)
    assert code == 1
    assert "malformed license: no '-----BEGIN INFERPACK LICENSE-----' line" in _one_line(err)


def test_issue_for_a_gpu_less_request_with_gpu(
    tmp_path: Path, cli: Cli, vendor: Path, host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "nvidia_gpu_uuids", list)
    assert cli("fingerprint", "--root", host.root, "--out", tmp_path / "cpu.json")[0] == 0
    code, _, err = cli(
        "license", "issue", "--key", vendor / "vendor.key", "--request", tmp_path / "cpu.json",
        "--deploy", "cats", "--days", "9", "--gpu", "--out", tmp_path / "gpu.lic",
    )  # fmt: skip
    assert code == 1
    assert "a GPU license needs GPUs in the request" in _one_line(err)


def test_issuing_for_a_thin_fingerprint_warns(tmp_path: Path, cli: Cli, vendor: Path) -> None:
    thin = FakeHost(tmp_path / "thin")
    thin.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    assert cli("fingerprint", "--root", thin.root, "--out", tmp_path / "thin.json")[0] == 0
    code, _, err = cli(
        "license", "issue", "--key", vendor / "vendor.key", "--request", tmp_path / "thin.json",
        "--deploy", "cats", "--days", "9", "--out", tmp_path / "thin.lic",
    )  # fmt: skip
    assert code == 0
    assert "only 2 fingerprint component(s); the machine binding is weak" in _one_line(err)


def test_show_says_when_the_deploy_name_was_not_checked(
    tmp_path: Path, cli: Cli, vendor: Path, request_file: Path, host: FakeHost
) -> None:
    lic = tmp_path / "a.lic"
    cli("license", "issue", "--key", vendor / "vendor.key", "--request", request_file, "--deploy", "cats",
        "--days", "9", "--out", lic)  # fmt: skip
    code, out, _ = cli("license", "show", lic, "--public-key", vendor / "vendor.pub", "--root", host.root)
    assert code == 0
    assert "verifies here:  yes (deploy name not checked: pass --deploy)" in out
