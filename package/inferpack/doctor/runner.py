"""Runs every check for the chosen services, in an order that reads top-down: the machine,
then per service from the containers outwards. A check that crashes becomes a FAIL line of
its own, so one unexpected error never hides the rest of the report."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from inferpack.deploy.inventory import ignored_folders, installed_services
from inferpack.deploy.layout import ServiceLayout
from inferpack.doctor import docker_checks, host_checks, license_checks, log_checks, service_checks
from inferpack.doctor.context import Options, Service, load_service, this_machine
from inferpack.doctor.result import HOST, Result, failed, passed

Probe = Callable[[], Result | list[Result] | None]
BUG_STEP = "this is a bug in the doctor itself: send the output of --json to the vendor"


@dataclass(frozen=True)
class Report:
    results: list[Result]
    services: list[str]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("FAIL") == 0


def _safely(scope: str, name: str, probe: Probe) -> list[Result]:
    try:
        outcome = probe()
    except Exception as exc:  # any failure of one probe is reported, never fatal
        return [failed(scope, name, f"the check could not run: {type(exc).__name__}: {exc}", BUG_STEP)]
    if outcome is None:
        return []
    return outcome if isinstance(outcome, list) else [outcome]


def chosen_layouts(opts: Options) -> list[ServiceLayout]:
    """The named services, else every one installed; ValueError for a bad name."""
    if opts.names:
        return [ServiceLayout(opts.work_root, name) for name in opts.names]
    return installed_services(opts.work_root)


def service_results(service: Service, opts: Options) -> Iterable[Result]:
    name, docker = service.name, service.settings.runtime == "docker"
    if docker:
        yield from _safely(name, "image", lambda: docker_checks.image(name, service.settings.image))
    yield from _safely(name, "instances", lambda: service_checks.instances(service))
    yield from (port := _safely(name, "port", lambda: service_checks.port(service, opts)))
    ready = _safely(name, "ready", lambda: service_checks.ready(service, opts))
    yield from ready
    if ready and ready[0].status == "PASS":  # a prediction through a server not ready only times out
        yield from _safely(name, "prediction", lambda: service_checks.prediction(service, opts))
        yield from _safely(name, "gpu-visible", lambda: service_checks.gpu_in_server(service, opts))
    if port and port[0].status != "FAIL":
        yield from _safely(name, "network", lambda: service_checks.network(service, opts))
    yield from _safely(name, "model", lambda: service_checks.model_files(service, opts))
    yield from _safely(name, "license", lambda: license_checks.checks(service, this_machine()))
    yield from _safely(name, "gpu", lambda: host_checks.gpu(name, service.settings.gpu, docker))
    yield from _safely(name, "logs", lambda: log_checks.logs(service, opts))


def run(opts: Options) -> Report:
    layouts = chosen_layouts(opts)
    results: list[Result] = []
    if not layouts:
        results.append(
            failed(
                HOST,
                "services",
                f"no service is installed under {opts.work_root}",
                "pass --work-root DIR if it is installed elsewhere, or install one: "
                "python3 install.py install NAME",
            )
        )
    services: list[Service] = []
    unreadable = False  # a service that could not be inspected: maybe Docker is the reason
    for layout in layouts:
        try:
            services.append(load_service(layout))
        except LookupError as exc:
            step = f"python3 install.py list --work-root {opts.work_root} shows what is installed"
            results.append(failed(layout.name, "service", str(exc), step))
        except Exception as exc:  # e.g. Docker down: its containers cannot be listed
            unreadable = True
            step = docker_checks.ENGINE_HINT if "docker" in repr(exc).lower() else BUG_STEP
            results.append(failed(layout.name, "service", f"cannot inspect it: {exc}", step))
    needs_docker = unreadable or any(s.settings.runtime == "docker" for s in services)
    try:
        engine = docker_checks.engine(needs_docker)
    except Exception as exc:  # an engine that answers ping but not info, an SDK missing, ...
        engine = docker_checks.Engine(failed(HOST, "docker", f"{type(exc).__name__}: {exc}", BUG_STEP), None)
    results.insert(0, engine.result)
    threshold = opts.disk_threshold
    results.append(
        host_checks.disk(
            "work root",
            opts.work_root,
            threshold,
            f"free space under {opts.work_root} (old logs in */logs/), or move the "
            "work root to a larger disk",
        )
    )
    if engine.root is not None and needs_docker:
        results.append(
            host_checks.disk(
                "Docker root",
                engine.root,
                threshold,
                "remove unused images and containers: docker system df; docker image prune",
            )
        )
    results += _safely(HOST, "memory", host_checks.memory)
    results += [passed(HOST, "inventory", note) for note in ignored_folders(opts.work_root)]
    for service in services:
        results += service_results(service, opts)
    return Report(results, [layout.name for layout in layouts])
