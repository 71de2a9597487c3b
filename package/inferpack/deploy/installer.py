"""The operator's operations: install, update, rollback, start, remove.

Every operation brings one version into service the same way: its model goes into
``versions/<V>`` beside the others, a backend for it starts on a loopback port and must pass
the gate (ready + a real sample prediction), and only then does ``routes.json`` send traffic
to it; the front keeps client connections, so the switch costs no failed request. The old
backend drains and stops afterwards. A failure before the switch leaves the old version
serving untouched.

``routes.json`` is the truth about what serves. Each command first reconciles the service
with it (the journal says what an interrupted run was doing), so an installer killed at any
point is recovered by the next run: exactly one version serving, the pointer and history
agreeing with it.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from inferpack.bundle import ROUTE_BY_TASK, ModelSpec, read_bundle
from inferpack.cli_errors import describe_failure
from inferpack.deploy import checks
from inferpack.deploy.environments import remove_unused
from inferpack.deploy.extract import extract_package
from inferpack.deploy.gate import GateFailed, predict_sample, record_sample_answer, refused_sample, wait_ready
from inferpack.deploy.inventory import installed_services
from inferpack.deploy.journal import Journal, finish, read_journal, record, work_root_lock
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.lu import verify_installed
from inferpack.deploy.manifest import Manifest, PackageError
from inferpack.deploy.routes import Backend, read_routes, routes_path, write_routes
from inferpack.deploy.runtime import BackendSpec, FrontOptions, Runtime
from inferpack.deploy.runtimes import make_runtime
from inferpack.deploy.settings import ALL_INTERFACES, ServiceSettings, load_settings, save_settings
from inferpack.deploy.verify import verify_package
from inferpack.deploy.versions import (
    VersionConflict,
    install_version,
    installed_versions,
    slot_for,
    switch_current,
)
from inferpack.license.fingerprint import collect, write_request
from inferpack.license.install import replace_license
from inferpack.license.pinned import trusted_key

Output = Callable[[str], None]
# The environment running the installer: in a package, install.py's venv in the work root, which
# outlives the package folder. Servers of the process runtime and start-1.sh run with it too.
PYTHON = Path(sys.executable)
GATE_TIMEOUT_S = 180.0
IMAGE_RUNTIMES = ("docker", "swarm")  # they run the package's server image


def contract_changes(old: ModelSpec, new: ModelSpec) -> list[str]:
    """How ``new`` differs from ``old`` for a client: its route, the labels it can answer."""
    changes: list[str] = []
    if old.task != new.task:
        changes.append(
            f"task {old.task} -> {new.task}: clients of /{ROUTE_BY_TASK[old.task]} get 404, "
            f"the route becomes /{ROUTE_BY_TASK[new.task]}"
        )
    gone, added = sorted(set(old.labels) - set(new.labels)), sorted(set(new.labels) - set(old.labels))
    if gone or added:  # a new order alone changes nothing a client sees: answers carry names
        parts = [f"removed {', '.join(gone)}"] if gone else []
        parts += [f"added {', '.join(added)}"] if added else []
        changes.append(f"labels {len(old.labels)} -> {len(new.labels)} ({'; '.join(parts)})")
    return changes


class InstallError(RuntimeError):
    """An operation that could not be done; the message says why and what still serves."""


@dataclass(frozen=True)
class InstallOptions:
    port: int = 8080
    bind: str = ALL_INTERFACES
    gpu: int | None = None
    license_file: Path | None = None
    runtime: str = "auto"  # "docker", "process", "swarm" or "auto"
    replicas: int = 1  # swarm only
    force: bool = False
    serve_args: tuple[str, ...] = ()
    gate_timeout_s: float = GATE_TIMEOUT_S
    errors_as_200: bool = False


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _expected_failure(exc: Exception) -> bool:
    """What an install can meet on a real host (a full disk, a missing image, Docker refusing),
    as opposed to a bug, which keeps its traceback."""
    expected = (InstallError, VersionConflict, OSError)
    return isinstance(exc, expected) or type(exc).__module__.startswith("docker.")


def _backend_spec(settings: ServiceSettings, backend: Backend) -> BackendSpec:
    return BackendSpec(
        backend.slot, backend.version, backend.port, settings.image, settings.gpu, settings.serve_args
    )


class Installer:
    def __init__(self, root: Path, out: Output = print) -> None:
        self.root = root
        self.out = out

    # ---- the operations -------------------------------------------------------------------

    def install(self, name: str, package_root: Path, options: InstallOptions) -> None:
        layout = ServiceLayout(self.root, name)
        with work_root_lock(self.root):
            settings = load_settings(layout)
            if settings is not None and read_journal(layout) is not None:
                # An install was interrupted: recover it; if it got as far as serving, it is done.
                self._reconcile(layout, make_runtime(settings.runtime, PYTHON))
                if read_routes(layout) is not None:
                    self._announce(layout, load_settings(layout) or settings)
                    return
            if settings is not None and read_routes(layout) is not None:
                raise InstallError(
                    f"{name} is already installed (version {settings.current_version}); "
                    "use update to install another version, or remove it first"
                )
            pinned = layout.vendor_key if layout.vendor_key.is_file() else None
            manifest = self._verified(package_root, pinned, name)
            runtime = make_runtime(self._choose_runtime(options.runtime), PYTHON)
            license_file = options.license_file or self._dropped_license(package_root, name, layout)
            preflight = [
                checks.check_runtime(runtime),
                checks.check_disk(self.root, self._space_needed(package_root, manifest)),
                checks.check_port(
                    options.port,
                    held_by_us=self._front_holds(runtime, layout, options.port),
                    bind=options.bind,
                ),
                checks.check_license(license_file, package_root / "vendor.pub", name),
                checks.check_instances(
                    license_file,
                    name,
                    [(s.name, s.license_file) for s in installed_services(self.root)],
                    instances=options.replicas,
                    state_dirs=[s.state_dir for s in installed_services(self.root)] + [layout.state_dir],
                ),
            ]
            if runtime.name in IMAGE_RUNTIMES:
                preflight.append(checks.check_image(manifest.image.tag, manifest.key_id))
            if options.gpu is not None or manifest.gpu:
                preflight.append(checks.check_gpu(options.gpu or 0))
                if runtime.name == "docker":
                    preflight.append(checks.check_nvidia_runtime())
                    if manifest.image.tag is not None and checks.check_image(manifest.image.tag).passed:
                        preflight.append(checks.check_cuda_driver(manifest.image.tag))
            if not checks.report(preflight, self.out) and not options.force:
                raise InstallError("environment checks failed (see FAIL above); fix them or use --force")

            settings = settings or ServiceSettings(
                name=name,
                runtime=runtime.name,
                port=options.port,
                bind=options.bind,
                image=self._image_ref(manifest) if runtime.name in IMAGE_RUNTIMES else None,
                gpu=options.gpu if options.gpu is not None else (0 if manifest.gpu else None),
                serve_args=options.serve_args,
                errors_as_200=options.errors_as_200,
                replicas=options.replicas,
            )
            fresh = not layout.home.exists()
            try:
                journal = record(layout, Journal.begin("install", manifest.model_version, None), "layout")
                self._lay_out(layout, package_root, license_file)
                save_settings(layout, settings)
                self._write_start_script(layout, runtime)
                install_version(layout, manifest.model_version, manifest.model_dir(package_root))
                self._serve(
                    layout, settings, runtime, manifest.model_version, journal, options.gate_timeout_s
                )
            except Exception as exc:
                # All or nothing: a service that never served is not left half-installed.
                self._undo_install(layout, runtime, fresh)
                if not _expected_failure(exc):
                    raise
                first, *rest = (str(exc) if isinstance(exc, InstallError) else describe_failure(exc)).split(
                    "\n"
                )
                raise InstallError("\n".join([f"{first}; nothing was installed", *rest])) from None
            self._announce(layout, load_settings(layout) or settings)

    def update(
        self,
        name: str,
        package: Path,
        gate_timeout_s: float = GATE_TIMEOUT_S,
        allow_task_change: bool = False,
    ) -> None:
        layout, settings, runtime = self._installed(name)
        with work_root_lock(self.root):
            self._reconcile(layout, runtime)
            settings = load_settings(layout) or settings
            incoming = layout.home / "incoming"
            incoming.mkdir(exist_ok=True)
            if package.is_dir():
                root, manifest = package, self._verified(package, layout.vendor_key, name)
            else:
                try:
                    root, manifest = extract_package(package, incoming, pinned_key=layout.vendor_key)
                except PackageError as exc:
                    raise InstallError(f"{package}: {exc.reason}; nothing was changed") from None
                self._check_name(manifest, name)
            try:
                version = manifest.model_version
                if version == settings.current_version:
                    raise InstallError(f"{name} already serves version {version}")
                self._check_contract(layout, manifest.model_dir(root), allow_task_change)
                if runtime.name in IMAGE_RUNTIMES:
                    settings = self._ensure_image(root, manifest, settings)
                install_version(layout, version, manifest.model_dir(root))
            finally:
                if root.parent == incoming:
                    shutil.rmtree(root, ignore_errors=True)
            journal = Journal.begin("update", version, settings.current_version)
            self._serve(layout, settings, runtime, version, journal, gate_timeout_s)

    def rollback(self, name: str, to: str | None = None, gate_timeout_s: float = GATE_TIMEOUT_S) -> None:
        layout, settings, runtime = self._installed(name)
        with work_root_lock(self.root):
            self._reconcile(layout, runtime)
            settings = load_settings(layout) or settings
            target = to or settings.previous_version()
            if target is None:
                raise InstallError(f"{name} has no earlier version to roll back to")
            if target == settings.current_version:
                raise InstallError(f"{name} already serves version {target}")
            if not (layout.versions / target).is_dir():
                installed = ", ".join(installed_versions(layout)) or "none"
                raise InstallError(f"version {target} is not installed (installed: {installed})")
            journal = Journal.begin("rollback", target, settings.current_version)
            self._serve(layout, settings, runtime, target, journal, gate_timeout_s)

    def start(self, name: str) -> None:
        """Recreates the service from its saved settings (what start/start-1.sh runs)."""
        layout, settings, runtime = self._installed(name)
        with work_root_lock(self.root):
            self._reconcile(layout, runtime)
            self._announce(layout, load_settings(layout) or settings)

    def remove(self, name: str, purge: bool) -> None:
        layout, _, runtime = self._installed(name)
        with work_root_lock(self.root):
            for instance in runtime.instances(layout):
                if instance.role == "backend" and instance.slot:
                    runtime.stop_backend(layout, instance.slot)
            runtime.stop_front(layout)
            finish(layout)
            if purge:
                shutil.rmtree(layout.home)
                self.out(f"{name} removed, with all its versions, license, logs and data (datasets, jobs)")
                remove_unused(self.root, self.out)
            else:
                layout.settings.rename(layout.home / "settings.removed.json")
                self.out(f"{name} removed; its versions, license, logs and data are kept in {layout.home}")

    def _check_contract(self, layout: ServiceLayout, model_dir: Path, allowed: bool) -> None:
        """What clients rely on: the route (the task) and the labels they get. A change is shown,
        and refused unless the operator allows it: on a new route every client gets 404."""
        changes = contract_changes(read_bundle(layout.current).spec, read_bundle(model_dir).spec)
        for change in changes:
            self.out(f"{'CHANGE' if allowed else 'REFUSED'}  {change}")
        if changes and not allowed:
            raise InstallError(
                f"the new version changes what clients get ({changes[0]}); "
                "pass --allow-task-change once clients are ready; nothing was changed"
            )

    def _undo_install(self, layout: ServiceLayout, runtime: Runtime, fresh: bool) -> None:
        """Stops what a failed install started and removes what it wrote: a folder it created
        goes; one kept by an earlier ``remove`` keeps its versions, license and logs."""
        for instance in runtime.instances(layout):
            if instance.role == "backend" and instance.slot:
                runtime.stop_backend(layout, instance.slot)
        runtime.stop_front(layout)
        if fresh:
            shutil.rmtree(layout.home, ignore_errors=True)
            return
        finish(layout)
        for path in (layout.settings, routes_path(layout), layout.start_script):
            path.unlink(missing_ok=True)

    # ---- bringing a version into service ---------------------------------------------------

    def _serve(
        self,
        layout: ServiceLayout,
        settings: ServiceSettings,
        runtime: Runtime,
        version: str,
        journal: Journal,
        gate_timeout_s: float,
    ) -> None:
        slot = slot_for(version)
        port = settings.backend_ports.get(slot) or _free_loopback_port()
        settings = replace(settings, backend_ports={**settings.backend_ports, slot: port})
        save_settings(layout, settings)
        journal = record(layout, journal, "start-backend")
        spec = _backend_spec(settings, Backend(slot, port, version))
        # Installed with --force past a bad license: the backend must come up refusing (337000).
        unlicensed = not verify_installed(layout).valid
        url = f"http://127.0.0.1:{port}"
        self.out(f"starting version {version} ({runtime.name}, 127.0.0.1:{port})")
        try:
            runtime.start_backend(layout, spec)
            record(layout, journal, "gate")
            exited = lambda: self._exited(runtime, layout, slot)  # noqa: E731
            wait_ready(url, gate_timeout_s, exited, unlicensed=unlicensed, progress=self.out)
            if unlicensed:
                refusal = refused_sample(url, layout.name, layout.versions / version)
            else:
                answer = predict_sample(url, layout.name, layout.versions / version)
        except (GateFailed, OSError) as exc:
            logs = runtime.logs(layout, slot, tail=15)
            runtime.stop_backend(layout, slot)
            finish(layout)
            serving = settings.current_version
            still = f"version {serving} keeps serving" if serving else "nothing serves"
            raise InstallError(f"version {version} failed its checks: {exc}; {still}\n{logs}") from None
        if unlicensed:
            self.out(
                f"WARNING: version {version} is up but answers 337000 until lu installs a license: {refusal}"
            )
        else:
            record_sample_answer(layout, version, answer)
            self.out(f"version {version} passed: ready, sample prediction {len(answer['results'])} result(s)")

        record(layout, journal, "switch")
        previous = read_routes(layout)
        write_routes(layout, Backend(slot, port, version))
        self._front_up(layout, runtime, settings)
        self._settle(layout, runtime)
        if previous is not None and previous.active.slot != slot:
            self.out(f"version {previous.active.version} drained and stopped; {version} serves")
        finish(layout)

    def _reconcile(self, layout: ServiceLayout, runtime: Runtime) -> None:
        """Brings an interrupted service back to what routes.json says serves."""
        journal = read_journal(layout)
        if journal is not None:
            self.out(f"recovering from an interrupted {journal.operation} of version {journal.target}")
        routes = read_routes(layout)
        if routes is None:  # an install killed before anything served: start over cleanly
            for instance in runtime.instances(layout):
                if instance.role == "backend" and instance.slot:
                    runtime.stop_backend(layout, instance.slot)
            finish(layout)
            return
        settings = load_settings(layout)
        assert settings is not None
        active = routes.active
        running = {i.slot for i in runtime.instances(layout) if i.role == "backend" and i.state == "running"}
        if active.slot not in running:
            runtime.start_backend(layout, _backend_spec(settings, active))
        self._front_up(layout, runtime, settings)
        self._settle(layout, runtime)
        if journal is not None:
            outcome = "completed" if active.version == journal.target else "rolled back"
            self.out(f"the interrupted {journal.operation} was {outcome}: version {active.version} serves")
        finish(layout)

    def _front_up(self, layout: ServiceLayout, runtime: Runtime, settings: ServiceSettings) -> None:
        """Starts the front unless it runs, and waits until the public port answers ready."""
        options = FrontOptions(settings.bind, settings.errors_as_200)
        runtime.ensure_front(layout, settings.port, settings.image, options)
        try:
            unlicensed = not verify_installed(layout).valid
            wait_ready(settings.local_url, timeout_s=60, unlicensed=unlicensed, progress=self.out)
        except GateFailed as exc:
            logs = runtime.logs(layout, "front", tail=15)
            raise InstallError(f"the front on port {settings.port} does not answer: {exc}\n{logs}") from None

    def _settle(self, layout: ServiceLayout, runtime: Runtime) -> None:
        """Makes everything agree with routes.json: the pointer, the history, one backend."""
        routes = read_routes(layout)
        assert routes is not None
        active = routes.active
        switch_current(layout, active.version)
        settings = load_settings(layout)
        assert settings is not None
        if settings.current_version != active.version:
            save_settings(layout, settings.activated(active.version))
        for instance in runtime.instances(layout):
            if instance.role == "backend" and instance.slot and instance.slot != active.slot:
                runtime.stop_backend(layout, instance.slot)

    # ---- helpers ---------------------------------------------------------------------------

    def _installed(self, name: str) -> tuple[ServiceLayout, ServiceSettings, Runtime]:
        layout = ServiceLayout(self.root, name)
        settings = load_settings(layout)
        if settings is None:
            raise InstallError(f"{name} is not installed under {self.root}")
        return layout, settings, make_runtime(settings.runtime, PYTHON)

    def _verified(self, package_root: Path, pinned: Path | None, name: str) -> Manifest:
        try:
            manifest = verify_package(package_root, pinned_key=pinned, in_place=True)
        except PackageError as exc:
            raise InstallError(f"{package_root}: {exc.reason}; nothing was changed") from None
        self._check_name(manifest, name)
        return manifest

    @staticmethod
    def _check_name(manifest: Manifest, name: str) -> None:
        if manifest.deploy_name != name:
            raise InstallError(
                f"this package is for {manifest.deploy_name!r}, not {name!r}; nothing was changed"
            )

    def _choose_runtime(self, wanted: str) -> str:
        if wanted != "auto":
            return wanted
        ok, detail = make_runtime("docker", PYTHON).available()
        if ok:
            return "docker"
        self.out(f"WARNING: no Docker Engine ({detail}); running the service as local processes")
        return "process"

    @staticmethod
    def _dropped_license(package_root: Path, name: str, layout: ServiceLayout) -> Path | None:
        for candidate in (package_root / "licenses" / f"{name}.lic", layout.license_file):
            if candidate.is_file():
                return candidate
        return None

    @staticmethod
    def _space_needed(package_root: Path, manifest: Manifest) -> int:
        model = sum(p.stat().st_size for p in manifest.model_dir(package_root).rglob("*") if p.is_file())
        return 3 * model + 256 * 2**20  # the version, a second one during updates, logs

    @staticmethod
    def _front_holds(runtime: Runtime, layout: ServiceLayout, port: int) -> bool:
        return any(
            i.role == "front"
            and i.port == port
            and i.state == "running"
            and i.details.get("home", str(layout.home)) in (str(layout.home), "")
            for i in runtime.instances(layout)
        )

    @staticmethod
    def _exited(runtime: Runtime, layout: ServiceLayout, slot: str) -> str | None:
        for instance in runtime.instances(layout):
            if instance.slot == slot and instance.state in ("exited", "dead", "missing"):
                return f"{instance.state} with code {instance.exit_code}"
            if instance.slot == slot and instance.restarts > 0:
                return f"restarted {instance.restarts} time(s), last exit code {instance.exit_code}"
        return None

    def _lay_out(self, layout: ServiceLayout, package_root: Path, license_file: Path | None) -> None:
        for folder in (layout.home, layout.versions, layout.license_dir, layout.state_dir, layout.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not layout.vendor_key.is_file():
            shutil.copyfile(package_root / "vendor.pub", layout.vendor_key)
        fingerprint = collect(Path("/"))
        write_request(layout.fingerprint_snapshot, fingerprint)
        if license_file is not None and license_file.resolve() != layout.license_file.resolve():
            try:
                replace_license(
                    layout.license_file,
                    license_file,
                    trusted_key(layout.vendor_key),
                    layout.name,
                    fingerprint,
                )
            except Exception as exc:  # --force past a failed license check: serve 337000 until `lu`
                self.out(f"WARNING: license not installed ({exc}); the service answers 337000 until lu")

    def _write_start_script(self, layout: ServiceLayout, runtime: Runtime) -> None:
        layout.start_script.parent.mkdir(parents=True, exist_ok=True)
        layout.start_script.write_text(
            "#!/usr/bin/env bash\n"
            f"# Recreates the {layout.name} service ({runtime.name}: front + the serving version) from\n"
            "# settings.json and routes.json. Safe to run at any time; nothing else is needed.\n"
            f'exec "{PYTHON}" -m inferpack start {layout.name} --work-root "{self.root}" "$@"\n'
        )
        layout.start_script.chmod(0o755)

    def _ensure_image(
        self, package_root: Path, manifest: Manifest, settings: ServiceSettings
    ) -> ServiceSettings:
        from inferpack.deploy.images import ensure_loaded

        try:
            ensure_loaded(package_root, manifest)
        except PackageError as exc:
            raise InstallError(f"{exc.reason}; nothing was changed") from None
        return replace(settings, image=self._image_ref(manifest))

    @staticmethod
    def _image_ref(manifest: Manifest) -> str:
        """How the runtime names the image: the docker runtime by tag."""
        return manifest.image.tag

    def _announce(self, layout: ServiceLayout, settings: ServiceSettings) -> None:
        route = ROUTE_BY_TASK[read_bundle(layout.current).spec.task]
        url = f"http://{socket.gethostname()}:{settings.port}/{layout.name}/{route}"
        self.out(f"{layout.name} version {settings.current_version} serves at {url}")
        self.out(
            f"try: curl -s {url} -H 'Content-Type: application/json' "
            '-d "{\\"image\\": \\"$(base64 -w0 IMAGE.jpg)\\"}"'
        )
