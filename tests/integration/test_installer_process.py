"""The installer over the process runtime: real packages, a real license for this machine, real
`inferpack supervise`d servers and fronts on loopback ports. No Docker needed; the Docker
paths are proved in tests/e2e/test_installer.py.

One service is installed once for the module (``served``); the tests that change it put it
back as they found it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from inferpack import cli
from inferpack.deploy.checks import check_instances
from inferpack.deploy.installer import Installer, InstallError, InstallOptions
from inferpack.deploy.inventory import ignored_folders, installed_services
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.settings import ServiceSettings, load_settings, save_settings
from tests.onnx_models import colour_classifier, failing_classifier, fixed_boxes_detector
from tests.support.packages import Vendor, fake_wheels, license_here, make_package, make_vendor, unpack
from tests.support.services import free_port, kill_supervised, post

NAME = "svc"
CLASSIFY = f"/{NAME}/ImageClassification"


@dataclass(frozen=True)
class Packages:
    vendor: Vendor
    v1: Path  # unpacked full package: colour classifier (red, green, blue), with its license
    broken_v1: Path  # unpacked full package whose model loads but fails its sample prediction
    detector_v2: Path  # update .tar.gz: a detector, another route
    relabelled_v3: Path  # update .tar.gz: a classifier with other labels


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    work = tmp_path_factory.mktemp("vendor")
    vendor = make_vendor(work / "keys")
    wheels = fake_wheels(work / "wheels")
    models = work / "models"

    def full(model: Path, folder: str) -> Path:
        (work / folder).mkdir()
        tarball, _ = make_package(work / folder, vendor, model, wheels, name=NAME)
        package = unpack(tarball, work / f"{folder}-unpacked")
        license_here(vendor, NAME, package / "licenses" / f"{NAME}.lic")
        return package

    def update(model: Path, version: str) -> Path:
        out = work / f"update-{version}"
        out.mkdir()
        tarball, _ = make_package(
            out, vendor, model, wheels, package_type="update", version=version, name=NAME
        )
        return tarball

    detector = fixed_boxes_detector(models / "det", [[10, 10, 100, 100, 0.9, 0]])
    return Packages(
        vendor,
        full(colour_classifier(models / "v1"), "v1"),
        full(failing_classifier(models / "broken"), "broken"),
        update(detector, "2.0.0"),
        update(colour_classifier(models / "v3", labels=["cyan", "magenta", "yellow"]), "3.0.0"),
    )


@dataclass
class Host:
    root: Path
    port: int
    lines: list[str]

    @property
    def installer(self) -> Installer:
        return Installer(self.root, out=self.lines.append)

    def options(self, port: int | None = None, bind: str = "0.0.0.0") -> InstallOptions:
        return InstallOptions(port=port or self.port, bind=bind, runtime="process", gate_timeout_s=90)


def _host(root: Path) -> Host:
    return Host(root, free_port(), [])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, packages: Packages) -> Iterator[Host]:
    host = _host(tmp_path_factory.mktemp("served") / "work")
    host.installer.install(NAME, packages.v1, host.options(bind="127.0.0.1"))
    yield host
    kill_supervised(host.root)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Host]:
    host = _host(tmp_path / "work")
    yield host
    kill_supervised(host.root)


def test_a_failed_install_leaves_nothing_and_the_next_one_works(bare: Host, packages: Packages) -> None:
    with pytest.raises(InstallError, match=r"failed its checks.*nothing was installed"):
        bare.installer.install(NAME, packages.broken_v1, bare.options())
    assert not (bare.root / NAME).exists()
    assert installed_services(bare.root) == []
    with pytest.raises(OSError):
        post(bare.port, CLASSIFY, timeout_s=2)

    bare.installer.install(NAME, packages.v1, bare.options())  # no `remove` needed in between
    assert post(bare.port, CLASSIFY)["results"][0]["name"] == "red"
    assert [s.name for s in installed_services(bare.root)] == [NAME]


def test_another_work_root_cannot_take_a_served_port(served: Host, bare: Host, packages: Packages) -> None:
    with pytest.raises(InstallError, match="environment checks failed"):
        bare.installer.install(NAME, packages.v1, bare.options(port=served.port))
    holder = f"in use by the inferpack service {NAME} (work root {served.root})"
    assert any(holder in line for line in bare.lines), bare.lines
    assert not (bare.root / NAME).exists()
    assert post(served.port, CLASSIFY)["results"][0]["name"] == "red"  # the first one is untouched


def test_bind_keeps_the_public_port_on_one_address(served: Host) -> None:
    listening = {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == served.port
    }
    assert listening == {"127.0.0.1"}
    settings = load_settings(ServiceLayout(served.root, NAME))
    assert settings is not None and settings.bind == "127.0.0.1"


def test_a_copied_service_folder_is_no_service(
    served: Host, packages: Packages, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's rollback method 1: cp -r NAME NAME_V1 inside the work root."""
    copy = served.root / f"{NAME}_V1"
    shutil.copytree(served.root / NAME, copy, symlinks=True)
    try:
        assert [s.name for s in installed_services(served.root)] == [NAME]
        assert [note.split(" is ignored")[0] for note in ignored_folders(served.root)] == [str(copy)]
        one_instance = license_here(packages.vendor, NAME, copy.parent / "one.lic", max_instances=1)
        others = [(s.name, s.license_file) for s in installed_services(served.root)]
        assert check_instances(one_instance, NAME, others).passed
        with pytest.raises(InstallError, match="not installed"):
            served.installer.start(f"{NAME}_V1")
        # The seed's `python3 install.py lu`, no name: the one service (the copy is none).
        fresh = license_here(packages.vendor, NAME, copy.parent / "fresh.lic")
        assert cli.main(["lu", str(fresh), "--work-root", str(served.root)]) == 0
        assert (served.root / NAME / "license" / "license.lic").read_bytes() == fresh.read_bytes()
        assert f"license for {NAME} updated" in capsys.readouterr().out
    finally:
        shutil.rmtree(copy)


def test_lu_without_a_name_asks_for_one_when_several_are_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("one", "two"):
        save_settings(ServiceLayout(tmp_path, name), ServiceSettings(name=name, runtime="process", port=1))
    assert cli.main(["lu", "--work-root", str(tmp_path)]) == 1
    assert (
        capsys.readouterr().err
        == f"inferpack lu: 2 services are installed under {tmp_path} (one, two): name one\n"
    )


def test_an_update_that_changes_what_clients_get_needs_the_flag(served: Host, packages: Packages) -> None:
    layout = ServiceLayout(served.root, NAME)
    for package, change in (
        (packages.detector_v2, "task classification -> detection"),
        (packages.relabelled_v3, "labels 3 -> 3"),
    ):
        served.lines.clear()
        with pytest.raises(InstallError, match=r"--allow-task-change.*nothing was changed"):
            served.installer.update(NAME, package, gate_timeout_s=90)
        assert any(change in line for line in served.lines), served.lines
        assert sorted(p.name for p in layout.versions.iterdir()) == ["1.0.0"]
        assert post(served.port, CLASSIFY)["results"][0]["name"] == "red"

    served.installer.update(NAME, packages.detector_v2, gate_timeout_s=90, allow_task_change=True)
    try:
        assert post(served.port, f"/{NAME}/ObjectDetection")["results"][0]["name"] == "a"  # its box
        with pytest.raises(urllib.error.HTTPError) as gone:
            post(served.port, CLASSIFY)
        assert gone.value.code == 404
        gone.value.close()
    finally:
        served.installer.rollback(NAME, "1.0.0", gate_timeout_s=90)
    assert post(served.port, CLASSIFY)["results"][0]["name"] == "red"


def test_a_full_disk_during_install_is_one_line_and_leaves_nothing(bare: Host, packages: Packages) -> None:
    """Writes past a file-size limit fail as a full disk does, mid-copy of the model."""
    model_bytes = (packages.v1 / "model" / "model.onnx").stat().st_size
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), as ENOSPC would be
        resource.setrlimit(resource.RLIMIT_FSIZE, ({model_bytes // 2}, {model_bytes // 2}))
        from inferpack.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    env_root = {"INFERPACK_PACKAGE_ROOT": str(packages.v1)}
    done = subprocess.run(
        [sys.executable, "-c", script, "install", NAME, "--runtime", "process", "--force",
         "--port", str(bare.port), "--work-root", str(bare.root)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env_root},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "File too large" in done.stderr and "nothing was installed" in done.stderr
    assert not (bare.root / NAME).exists()


def test_trouble_shooting_tar_runs_from_any_folder(served: Host, packages: Packages, tmp_path: Path) -> None:
    """The seed's steps: tar vxf trouble_shooting.tar; bash trouble_shooting.sh, in some folder;
    the script finds the installer's Python environment in the work root by itself."""
    environments = served.root / ".inferpack"
    environments.mkdir(exist_ok=True)
    (environments / "venv-test").symlink_to(Path(sys.prefix), target_is_directory=True)  # as install.py makes
    try:
        subprocess.run(["tar", "xf", str(packages.v1 / "trouble_shooting.tar")], cwd=tmp_path, check=True)
        done = subprocess.run(
            ["bash", "trouble_shooting.sh", "--work-root", str(served.root)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]},
        )  # fmt: skip
    finally:
        (environments / "venv-test").unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  svc   prediction" in done.stdout and "0 FAIL" in done.stdout, done.stdout
