"""build_package and `inferpack pack`: the layout, a reproducible tarball, and refusals."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from tests.support.packages import CREATED, FAKE_IMAGE_ID, FAKE_IMAGE_TAG, Vendor, make_package, unpack

from inferpack.cli import main
from inferpack.deploy.manifest import Manifest, PackageError
from inferpack.deploy.pack import PackageImage


def test_same_inputs_give_the_same_bytes(
    tmp_path: Path, vendor: Vendor, model_dir: Path, wheels: list[Path], package: Path
) -> None:
    (tmp_path / "again").mkdir()
    again, _ = make_package(tmp_path / "again", vendor, model_dir, wheels)
    assert again.read_bytes() == package.read_bytes()


def test_tar_members_are_normalised(package: Path) -> None:
    with tarfile.open(package, "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    for info in members:
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
        assert info.mtime == CREATED.timestamp()
        assert info.type in (tarfile.REGTYPE, tarfile.DIRTYPE)
        executable = info.isdir() or info.name == "install.py" or info.name.endswith(".sh")
        assert info.mode == (0o755 if executable else 0o644), info.name
    assert {"model", "original/images", "licenses", "start", "trouble_shooting", "wheels"} <= set(names)
    assert "trouble_shooting.tar" in names  # the seed's: tar vxf trouble_shooting.tar


def test_update_package_carries_no_image(
    tmp_path: Path, vendor: Vendor, model_dir: Path, wheels: list[Path]
) -> None:
    tarball, manifest = make_package(tmp_path, vendor, model_dir, wheels, package_type="update")
    assert manifest.package_type == "update" and manifest.image.file is None
    assert (manifest.image.tag, manifest.image.id) == (FAKE_IMAGE_TAG, FAKE_IMAGE_ID)
    root = unpack(tarball, tmp_path / "u")
    assert not (root / "original" / "images").exists()
    assert "update package" in (root / "README.txt").read_text()


def test_readmes_tell_the_operator_what_to_do(unpacked: Path, built: tuple[Path, Manifest]) -> None:
    readme = (unpacked / "README.txt").read_text()
    assert built[1].key_id in readme and "bash original/download.sh" in readme
    assert "python3 install.py install cats" in readme
    assert "licenses/cats.lic" in readme
    assert "python3 install.py lu cats" in (unpacked / "licenses" / "README.txt").read_text()


def test_never_overwrites_a_package(
    package: Path, vendor: Vendor, model_dir: Path, wheels: list[Path]
) -> None:
    before = package.read_bytes()
    with pytest.raises(PackageError, match="already exists; refusing to overwrite it"):
        make_package(package.parent, vendor, model_dir, wheels)
    assert package.read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"name": "../cats"}, "deploy name '../cats' is not valid"),
        ({"version": "1.0/../x"}, "version '1.0/../x' is not valid"),
        ({"image": PackageImage("x:1", FAKE_IMAGE_ID, None)}, "a full package carries the image tarball"),
    ],
)
def test_bad_inputs_are_refused(
    tmp_path: Path,
    vendor: Vendor,
    model_dir: Path,
    wheels: list[Path],
    kwargs: dict[str, object],
    reason: str,
) -> None:
    with pytest.raises(PackageError, match=reason):
        make_package(tmp_path, vendor, model_dir, wheels, **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # no staging folder or partial tarball left


def test_symlinks_in_the_model_are_refused(
    tmp_path: Path, vendor: Vendor, model_dir: Path, wheels: list[Path]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.onnx", "model.json"):
        (model / name).write_bytes((model_dir / name).read_bytes())
    (model / "labels.txt").symlink_to("/etc/hostname")
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError, match=r"labels\.txt is not a regular file"):
        make_package(tmp_path / "out", vendor, model, wheels)


def test_cli_refuses_a_model_onnxruntime_cannot_load(
    tmp_path: Path, vendor: Vendor, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before any image or wheel work: a broken graph never ships."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_bytes((model_dir / "model.json").read_bytes())
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    code = main(
        [
            "pack",
            str(broken),
            "--name",
            "cats",
            "--version",
            "1",
            "--key",
            str(vendor.private),
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("inferpack pack: ") and "onnxruntime cannot load the model" in err
    assert "\n" not in err


def test_cli_refuses_an_existing_package_first(
    package: Path, vendor: Vendor, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--name",
        "cats",
        "--version",
        "1.0.0",
        "--key",
        str(vendor.private),
        "--out",
        str(package.parent),
    ]
    assert main(["pack", str(model_dir), *args]) == 1
    assert capsys.readouterr().err == f"inferpack pack: {package} already exists; refusing to overwrite it\n"


def test_cli_verify(
    unpacked: Path, built: tuple[Path, Manifest], vendor: Vendor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["package", "verify", str(unpacked), "--pinned-key", str(vendor.public)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"PASS signature: signed by vendor key id {built[1].key_id} (the installed vendor key)"
    )
    assert f"PASS files: all {len(built[1].files)} files match their SHA-256; none missing, none added" in out
    (unpacked / "model" / "extra").write_text("x")
    assert main(["package", "verify", str(unpacked)]) == 1
    assert capsys.readouterr().err == (
        "FAIL package verify: model/extra is not listed in manifest.json: added after signing\n"
    )
