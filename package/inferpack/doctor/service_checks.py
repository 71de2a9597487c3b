"""One service from the outside in: its containers/processes, the public port, /readyz, a real
prediction compared with the answer recorded at install, the path from another address, the
model files against the package manifest, and (GPU services) the GPU seen by the server.

Each probe has a short timeout, so a hung server makes the doctor slow by seconds, not stuck.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import psutil  # type: ignore[import-untyped]

from inferpack.deploy import checks, loopback
from inferpack.deploy.gate import GateFailed, predict_sample, readiness, recorded_answer
from inferpack.deploy.manifest import MANIFEST, MODEL_DIR, PackageError, parse_manifest, sha256_file
from inferpack.deploy.routes import FRONT_HEALTH_PATH, front_routes
from inferpack.deploy.runtime import FRONT, InstanceStatus, instance_name
from inferpack.deploy.settings import ALL_INTERFACES
from inferpack.deploy.versions import slot_for
from inferpack.doctor import docker_checks
from inferpack.doctor.context import Options, Service
from inferpack.doctor.result import Result, failed, passed, warned

SCORE_TOLERANCE = 0.01
BOX_TOLERANCE_PX = 2
VIRTUAL_INTERFACES = ("lo", "docker", "br-", "veth", "virbr", "cni", "flannel", "cali", "vxlan", "tun", "tap")


def _instance_check_name(service: Service) -> str:
    return {"docker": "container", "swarm": "replica"}.get(service.settings.runtime, "process")


def _restart_hint(service: Service, name: str, pid: str | None = None) -> str:
    """How to restart a running instance; start-1.sh keeps what runs as it is."""
    if service.settings.runtime == "docker":
        return f"restart it: docker restart {name}"
    if service.settings.runtime == "swarm":
        return f"replace it: docker service update --force {name.rsplit('.', 1)[0]} (one task at a time)"
    return f"restart it: kill {pid or 'its PID'} (its supervisor starts it again)"


def instance_check(service: Service, instance: InstanceStatus, expected: str) -> Result:
    check = _instance_check_name(service)
    start = f"bash {service.start_script} starts it again"
    attrs = docker_checks.inspect(instance.name) if service.settings.runtime == "docker" else None
    oom = " (killed for lack of memory: OOM)" if attrs and docker_checks.oom_killed(attrs) else ""
    probe = docker_checks.last_health_output(attrs) if attrs else ""
    evidence = (f"last health probe: {probe}",) if probe else ()
    what = f"{instance.name} ({expected})"
    if instance.state == "restarting" or (instance.restarts and instance.health in ("starting", "unhealthy")):
        return failed(
            service.name,
            check,
            f"{what}: crash loop, restarted {instance.restarts} time(s), last exit code "
            f"{instance.exit_code}{oom}",
            "see the logs check below for the error; " + start,
            evidence,
        )
    if instance.state == "running":
        if instance.health == "unhealthy":
            return failed(
                service.name,
                check,
                f"{what}: running but unhealthy",
                _restart_hint(service, instance.name, instance.details.get("pid"))
                + "; if it stays unhealthy, see the ready and logs checks",
                evidence,
            )
        if instance.health == "starting":
            return warned(
                service.name,
                check,
                f"{what}: running, still starting",
                "wait a minute and run this again",
                evidence,
            )
        if instance.restarts:
            return warned(
                service.name,
                check,
                f"{what}: running, {instance.health}, but restarted {instance.restarts} time(s), "
                f"last exit code {instance.exit_code}{oom}",
                "see the logs check for why it stopped",
            )
        return passed(service.name, check, f"{what}: running, {instance.health}, since {instance.started_at}")
    return failed(
        service.name, check, f"{what}: {instance.state}, exit code {instance.exit_code}{oom}", start, evidence
    )


def instances(service: Service) -> list[Result]:
    """The front and the routed backend must exist and be healthy; leftovers are WARNed about."""
    check = _instance_check_name(service)
    if service.routes is None:
        why = service.routes_error or "state/routes.json is missing: no install finished"
        return [
            failed(
                service.name,
                "routes",
                f"no version is routed: {why}",
                f"python3 install.py install {service.name} from the deploy package again",
            )
        ]
    if service.settings.runtime == "swarm":
        from inferpack.doctor.swarm_checks import swarm_tasks

        return swarm_tasks(service)
    active = service.routes.active
    by_slot = {i.slot if i.role != FRONT else FRONT: i for i in service.instances}
    results = []
    for slot, expected in (
        (FRONT, f"front on port {service.settings.port}"),
        (active.slot, f"version {active.version}"),
    ):
        instance = by_slot.pop(slot, None)
        if instance is None:
            results.append(
                failed(
                    service.name,
                    check,
                    f"{expected}: no {check} exists",
                    f"bash {service.start_script} recreates it",
                )
            )
        else:
            results.append(instance_check(service, instance, expected))
    for extra in by_slot.values():
        results.append(
            warned(
                service.name,
                check,
                f"{extra.name}: {extra.state}, not routed (left over)",
                f"python3 install.py start {service.name} stops what is not routed",
            )
        )
    return results


def accepts(port: int) -> bool:
    """Whether anything listens on 127.0.0.1:``port`` (a bind test would also trip on TIME_WAIT)."""
    with socket.socket() as probe:
        probe.settimeout(2.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def port(service: Service, opts: Options) -> Result:
    """The public port must be answered by this service's own front."""
    number = service.settings.port
    try:
        routes = front_routes(number, timeout_s=opts.timeout_s)
    except (OSError, ValueError, KeyError) as exc:
        if not accepts(number):
            return failed(
                service.name,
                "port",
                f"nothing listens on port {number}",
                f"bash {service.start_script} starts the front",
            )
        holder = checks.port_holder(number)
        return failed(
            service.name,
            "port",
            f"port {number} is held by another program: {holder} ({exc})",
            f"stop {holder} or move it to another port, then bash {service.start_script}",
        )
    if routes is not None and routes.service and routes.service != str(service.layout.home):
        holder = checks.port_holder(number)
        return failed(
            service.name,
            "port",
            f"port {number} is held by {holder}",
            f"remove one of the two, or give one another port, then bash {service.start_script}",
        )
    wanted = service.routes.active if service.routes else None
    if routes is not None and wanted is not None and routes.active != wanted:
        return warned(
            service.name,
            "port",
            f"port {number}: the front routes to {routes.active.slot}, routes.json to {wanted.slot}",
            "run this again in a few seconds; if it persists: bash " + str(service.start_script),
        )
    return passed(service.name, "port", f"port {number}: this service's front answers")


def _ready_hint(service: Service, reason: str) -> str:
    if "license" in reason:
        return "see the license checks below"
    if "model" in reason:
        return "see the logs check below for why the model does not load"
    return f"see the {_instance_check_name(service)} and logs checks; bash {service.start_script}"


def ready(service: Service, opts: Options) -> Result | None:
    """The routed backend's own /readyz (the precise reason), then the same through the public port."""
    if service.routes is None:
        return None
    active, port = service.routes.active, service.settings.port
    probes = (
        (active.port, f"version {active.version} (127.0.0.1:{active.port}) is not ready", None),
        (port, f"port {port}/readyz", f"the backend is ready but the front does not pass it on: bash "
         f"{service.start_script}"),
    )  # fmt: skip
    for probed, what, hint in probes:
        if (reason := readiness(f"http://127.0.0.1:{probed}", opts.timeout_s)) is not None:
            return failed(service.name, "ready", f"{what}: {reason}", hint or _ready_hint(service, reason))
    return passed(service.name, "ready", f"port {port}/readyz: ready (version {active.version})")


def _describe(result: dict[str, Any]) -> str:
    text = f"{result.get('name')} {float(result.get('score', 0.0)):.3f}"
    if isinstance(box := result.get("location"), dict):
        text += f" at {box.get('left')},{box.get('top')} {box.get('width')}x{box.get('height')}"
    return text


def compare_answers(recorded: list[dict[str, Any]], got: list[dict[str, Any]]) -> str | None:
    """Pure: None when ``got`` is the recorded answer (within score/box tolerances), else the
    first difference in words."""
    if len(recorded) != len(got):
        return f"{len(got)} result(s), {len(recorded)} recorded at install"
    for rank, (want, have) in enumerate(zip(recorded, got, strict=True), start=1):
        differs = want.get("name") != have.get("name") or (
            abs(float(want.get("score", 0.0)) - float(have.get("score", 0.0))) > SCORE_TOLERANCE
        )
        want_box, have_box = want.get("location"), have.get("location")
        if isinstance(want_box, dict) and isinstance(have_box, dict):
            differs = differs or any(
                abs(float(want_box.get(k, 0)) - float(have_box.get(k, 0))) > BOX_TOLERANCE_PX
                for k in ("left", "top", "width", "height")
            )
        if differs:
            return f"result {rank} is {_describe(have)}, recorded at install: {_describe(want)}"
    return None


def prediction(service: Service, opts: Options) -> Result | None:
    """The sample image through the public port, as at install; compared with that answer."""
    if service.routes is None:
        return None
    version = service.routes.active.version
    model_dir = service.layout.versions / version
    url = f"http://127.0.0.1:{service.settings.port}"
    try:
        answer = predict_sample(url, service.name, model_dir)
    except GateFailed as exc:
        return failed(
            service.name,
            "prediction",
            str(exc),
            "see the logs check below; send the support "
            "bundle to the vendor if it stays: bash trouble_shooting.sh --bundle support.tar.gz",
        )
    recorded = recorded_answer(service.layout, version)
    if recorded is None:
        return warned(
            service.name,
            "prediction",
            f"sample answered {len(answer['results'])} result(s); no answer was recorded at install",
            "nothing to compare with (installed by an older installer); reinstalling records one",
        )
    difference = compare_answers(recorded, answer["results"])
    if difference is not None:
        return failed(
            service.name,
            "prediction",
            f"the sample answer changed since install: {difference}",
            f"the model files of version {version} may be damaged (see the model check): copy the "
            f"deploy package's model/ over {model_dir}/, then restart the backend",
        )
    top = _describe(answer["results"][0]) if answer["results"] else "no result"
    return passed(service.name, "prediction", f"sample answer as recorded at install (top: {top})")


def outside_addresses() -> list[str]:
    """IPv4 addresses of the machine's real, up interfaces: what clients on the network use."""
    stats = psutil.net_if_stats()
    found = []
    for interface, addresses in sorted(psutil.net_if_addrs().items()):
        if interface.startswith(VIRTUAL_INTERFACES) or not (stats.get(interface) and stats[interface].isup):
            continue
        found += [
            a.address for a in addresses if a.family.name == "AF_INET" and not a.address.startswith("127.")
        ]
    return found


def network(service: Service, opts: Options) -> Result:
    """The front from a non-loopback address: a front bound to loopback, or a firewall, shows here."""
    number, bind = service.settings.port, service.settings.bind
    if bind not in (ALL_INTERFACES, "::"):
        return passed(service.name, "network", f"port {number} listens on {bind} only, as installed (--bind)")
    addresses = outside_addresses()
    if not addresses:
        return warned(
            service.name,
            "network",
            "this machine has no network address besides loopback",
            "clients on other machines cannot reach it: configure a network interface (ip addr)",
        )
    failures = []
    for address in addresses[:3]:
        try:
            with loopback.opener.open(
                f"http://{address}:{number}{FRONT_HEALTH_PATH}", timeout=opts.timeout_s
            ):
                return passed(service.name, "network", f"the front answers on {address}:{number}")
        except OSError as exc:
            failures.append(f"{address}: {getattr(exc, 'reason', exc)}")
    return failed(
        service.name,
        "network",
        f"port {number} answers on loopback only ({'; '.join(failures)})",
        f"a firewall may block it: allow TCP {number} (iptables -S; nft list ruleset)",
    )


def _package_manifest(opts: Options, name: str) -> tuple[str, dict[str, str]] | None:
    """(version, {model file: sha256}) from the deploy package we run from, when it is this service's."""
    if opts.package_root is None or not (opts.package_root / MANIFEST).is_file():
        return None
    try:
        manifest = parse_manifest((opts.package_root / MANIFEST).read_bytes())
    except (OSError, PackageError):
        return None
    if manifest.deploy_name != name:
        return None
    prefix = f"{MODEL_DIR}/"
    files = {
        path.removeprefix(prefix): sha for path, sha in manifest.files.items() if path.startswith(prefix)
    }
    return manifest.model_version, files


def model_files(service: Service, opts: Options) -> Result | None:
    """The installed version's files against the package's signed manifest (only from a package)."""
    found = _package_manifest(opts, service.name)
    if found is None or opts.package_root is None:
        return None
    version, files = found
    folder = service.layout.versions / version
    if not folder.is_dir():
        return None
    changed = []
    for relative, sha in sorted(files.items()):
        path = folder / relative
        if not path.is_file():
            changed.append(f"{relative} is missing")
        elif sha256_file(path) != sha:
            changed.append(f"{relative} differs")
    if changed:
        return failed(
            service.name,
            "model",
            f"versions/{version}: {', '.join(changed)} from the package manifest",
            f"copy {opts.package_root / MODEL_DIR}/ over {folder}/, then "
            + _restart_hint(service, instance_name(service.layout, slot_for(version))),
        )
    return passed(
        service.name, "model", f"versions/{version}: {len(files)} file(s) match the package manifest"
    )


def gpu_in_server(service: Service, opts: Options) -> Result | None:
    """A GPU service's server must run a GPU engine: CPU means the GPU is not visible inside."""
    if service.settings.gpu is None or service.routes is None:
        return None
    url = f"http://127.0.0.1:{service.routes.active.port}/info"
    try:
        with loopback.opener.open(url, timeout=opts.timeout_s) as response:
            engine = json.loads(response.read()).get("engine", {})
    except (OSError, ValueError) as exc:
        return warned(
            service.name,
            "gpu-visible",
            f"cannot ask the server which engine runs: {exc}",
            "see the ready check",
        )
    device = str(engine.get("device", ""))
    if engine.get("status") == "loading" or not device:
        return warned(service.name, "gpu-visible", "the model is still loading", "run this again in a minute")
    if device == "cpu":
        return failed(
            service.name,
            "gpu-visible",
            f"GPU {service.settings.gpu} asked, but the server runs {engine.get('backend')} on CPU",
            "the container does not see the GPU: check nvidia-container-toolkit "
            "(docker run --rm --gpus all IMAGE nvidia-smi), then bash " + str(service.start_script),
        )
    return passed(service.name, "gpu-visible", f"the server runs {engine.get('backend')} on {device}")
