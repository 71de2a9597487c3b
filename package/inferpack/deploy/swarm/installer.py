"""The operator's operations on a swarm manager (``--runtime swarm``).

Everything the single-host installer does before and after serving a version is the same:
the package is verified, the versions sit side by side under the work root, settings.json and
routes.json say what serves. What differs is how a version comes into service: one Swarm
rolling update of the replicas (one at a time, new before old, each health-gated on /readyz;
Swarm rolls back by itself when a new replica fails), then the sample prediction through the
public port. ``lu`` and ``scale`` are rolling updates too, so clients see none of them.
"""

from __future__ import annotations

import time
from dataclasses import replace

from inferpack.deploy import checks
from inferpack.deploy.gate import GateFailed, predict_sample, record_sample_answer
from inferpack.deploy.installer import Installer, InstallError
from inferpack.deploy.inventory import installed_services
from inferpack.deploy.journal import Journal, finish, record, work_root_lock
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.manifest import Manifest
from inferpack.deploy.routes import Backend, read_routes, write_routes
from inferpack.deploy.runtime import BackendSpec, Runtime
from inferpack.deploy.settings import ServiceSettings, save_settings
from inferpack.deploy.swarm.runtime import SwarmError, SwarmRuntime
from inferpack.deploy.swarm.specs import REPLICA_PORT, replicas_name

SLOT = "replica"  # every replica is one backend to the installer: Swarm keeps their count


class SwarmInstaller(Installer):
    @staticmethod
    def _image_ref(manifest: Manifest) -> str:
        """By image id: every node runs exactly the image the signed manifest names, or nothing."""
        return manifest.image.id

    def _serve(
        self,
        layout: ServiceLayout,
        settings: ServiceSettings,
        runtime: Runtime,
        version: str,
        journal: Journal,
        gate_timeout_s: float,
    ) -> None:
        swarm = _swarm(runtime)
        swarm.replicas = settings.replicas
        journal = record(layout, journal, "rollout")
        serving = settings.current_version
        self.out(f"rolling version {version} out to {settings.replicas} replica(s), one at a time")
        started = time.monotonic()
        try:
            swarm.start_backend(layout, BackendSpec(SLOT, version, REPLICA_PORT, settings.image))
            swarm.wait_rolled_out(layout, gate_timeout_s)
            self._front_up(layout, swarm, settings)
            answer = predict_sample(
                f"http://127.0.0.1:{settings.port}", layout.name, layout.versions / version
            )
        except (SwarmError, GateFailed, OSError) as exc:
            self._undo(layout, swarm, settings, serving, gate_timeout_s)
            still = f"version {serving} keeps serving" if serving else "nothing was started"
            raise InstallError(f"version {version} failed: {exc}; {still}") from None
        took = time.monotonic() - started
        record_sample_answer(layout, version, answer)
        record(layout, journal, "switch")
        write_routes(layout, Backend(SLOT, REPLICA_PORT, version, f"tasks.{replicas_name(layout)}"))
        self._settle(layout, swarm)
        finish(layout)
        self.out(f"version {version} serves on {settings.replicas} replica(s) (rolled out in {took:.1f}s)")

    def _undo(
        self,
        layout: ServiceLayout,
        swarm: SwarmRuntime,
        settings: ServiceSettings,
        serving: str | None,
        timeout_s: float,
    ) -> None:
        """After a failed version: nothing on a first install; else make sure the version that
        served before is what runs (Swarm has usually rolled back already)."""
        try:
            if serving is None:
                swarm.stop_backend(layout, SLOT)
            else:
                swarm.start_backend(layout, BackendSpec(SLOT, serving, REPLICA_PORT, settings.image))
                swarm.wait_rolled_out(layout, timeout_s)
        finally:
            finish(layout)

    # ---- swarm-only operations ---------------------------------------------------------------

    def scale(self, name: str, replicas: int, timeout_s: float) -> None:
        layout, settings, runtime = self._installed(name)
        swarm = _swarm(runtime)
        if replicas < 1:
            raise InstallError("replicas must be at least 1 (remove the service to stop it)")
        with work_root_lock(self.root):
            others = [(s.name, s.license_file) for s in installed_services(self.root)]
            allowed = checks.check_instances(layout.license_file, name, others, instances=replicas)
            if not allowed.passed:
                raise InstallError(f"the license allows no more: {allowed.detail}; {allowed.hint}")
            swarm.scale(layout, replicas)
            save_settings(layout, replace(settings, replicas=replicas))
            try:
                swarm.wait_rolled_out(layout, timeout_s)
            except SwarmError as exc:
                raise InstallError(f"{name} asked for {replicas} replica(s), but: {exc}") from None
        self.out(f"{name} runs {replicas} replica(s)")

    def rotate_license(self, name: str, timeout_s: float) -> None:
        """After ``lu`` put a new license in place: a new secret, rolled out replica by replica."""
        layout, settings, runtime = self._installed(name)
        swarm = _swarm(runtime)
        routes = read_routes(layout)
        if routes is None:
            raise InstallError(f"{name} serves no version yet")
        with work_root_lock(self.root):
            started = time.monotonic()
            swarm.start_backend(
                layout, BackendSpec(SLOT, routes.active.version, REPLICA_PORT, settings.image)
            )
            try:
                swarm.wait_rolled_out(layout, timeout_s)
            except SwarmError as exc:
                raise InstallError(f"the new license did not reach every replica: {exc}") from None
            swarm.prune_contents(layout)
        took = time.monotonic() - started
        self.out(f"every replica of {name} runs with the new license (rolled out in {took:.1f}s)")

    def remove(self, name: str, purge: bool) -> None:
        layout, _, runtime = self._installed(name)
        super().remove(name, purge)
        _swarm(runtime).prune_contents(layout)


def _swarm(runtime: Runtime) -> SwarmRuntime:
    if not isinstance(runtime, SwarmRuntime):
        raise InstallError(f"this needs the swarm runtime; the service runs on {runtime.name}")
    return runtime
