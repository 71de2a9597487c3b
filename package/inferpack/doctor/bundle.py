"""``--bundle FILE``: a tar.gz a vendor can diagnose a deployment from, without the machine.

In it: the check results (text and JSON), versions, the package manifest, each service's
settings, routes, recorded sample answers, model.json of each version, license summary,
``docker inspect`` (or the process runtime's records), recent logs, and a fresh fingerprint
request. Never in it: private keys, the license file (its signature), model weights or image
bytes. Files are chosen by name (an allow-list, nothing copied by folder), and every text is
scrubbed of PEM private keys and license blocks on the way in, in case a log quoted one.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from inferpack.deploy.manifest import MANIFEST
from inferpack.doctor import docker_checks, license_checks
from inferpack.doctor.context import Options, Service, load_service, this_machine
from inferpack.doctor.report import dumps, text_lines, versions
from inferpack.doctor.runner import Report, chosen_layouts
from inferpack.fileio import open_atomic
from inferpack.license._time import utcnow
from inferpack.license.fingerprint import write_request

PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)
LICENSE_BLOCK = re.compile(r"-----BEGIN INFERPACK LICENSE-----.*?(-----END INFERPACK LICENSE-----|\Z)", re.S)
MAX_MEMBER_BYTES = 8 * 2**20  # logs are tails; anything bigger is not what the bundle is for
README = """\
inferpack support bundle: what `bash trouble_shooting.sh --bundle` saw on this machine.
results.txt / results.json   every check: PASS/WARN/FAIL, what was found, the next step
versions.json                inferpack, Python, OS, Docker versions
fingerprint-request.json     this machine's hashed fingerprint (what a license is issued for)
package-manifest.json        the deploy package's manifest (when run from a package)
services/NAME/               settings, routes, recorded sample answers, model.json per version,
                             license summary, docker inspect or process records, recent logs
Not included: private keys, license files or signatures, model weights, image layers.
"""


def scrub(text: str) -> str:
    """Removes PEM private keys and license blocks from ``text`` (defence in depth)."""
    text = PRIVATE_KEY.sub("[private key removed]", text)
    return LICENSE_BLOCK.sub("[license block removed]", text)


class _Writer:
    def __init__(self, tar: tarfile.TarFile, prefix: str) -> None:
        self.tar, self.prefix = tar, prefix
        self.names: list[str] = []

    def text(self, name: str, text: str) -> None:
        data = scrub(text).encode()[-MAX_MEMBER_BYTES:]
        info = tarfile.TarInfo(f"{self.prefix}/{name}")
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        self.tar.addfile(info, io.BytesIO(data))
        self.names.append(name)

    def json(self, name: str, data: Any) -> None:
        self.text(name, json.dumps(data, indent=2, default=str) + "\n")

    def file(self, name: str, path: Path) -> None:
        """A small text file, if it is there."""
        try:
            if path.is_file() and path.stat().st_size <= MAX_MEMBER_BYTES:
                self.text(name, path.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            self.text(name + ".unreadable", f"{exc}\n")


def _service(out: _Writer, service: Service, opts: Options) -> None:
    base, layout = f"services/{service.name}", service.layout
    out.file(f"{base}/settings.json", layout.settings)
    out.file(f"{base}/routes.json", layout.state_dir / "routes.json")
    for answer in sorted(layout.answers.glob("*.json")):
        out.file(f"{base}/answers/{answer.name}", answer)
    for version in sorted(p for p in layout.versions.glob("*") if p.is_dir() and not p.name.startswith(".")):
        out.file(f"{base}/model/{version.name}/model.json", version / "model.json")
    state = license_checks.verify(service, this_machine(), utcnow())
    out.json(f"{base}/license-summary.json", state.summary() if state else {"installed": False})
    for instance in service.instances:
        if service.settings.runtime == "docker":
            out.json(f"{base}/inspect/{instance.name}.json", docker_checks.inspect(instance.name))
        else:
            records = layout.state_dir / "processes"
            out.file(f"{base}/processes/{instance.name}.json", records / f"{instance.name}.json")
            out.file(f"{base}/processes/{instance.name}.state.json", records / f"{instance.name}.state.json")
        out.text(
            f"{base}/logs/{instance.name}.log", service.runtime.logs(layout, instance.name, opts.scan_lines)
        )


def _docker_versions() -> dict[str, Any]:
    try:
        from inferpack.deploy.docker_runtime import DockerRuntime

        version: dict[str, Any] = DockerRuntime().client.version()
        return version
    except Exception as exc:  # no engine is itself worth recording
        return {"unreachable": str(exc)}


def write_bundle(target: Path, report: Report, opts: Options) -> list[str]:
    """Writes the bundle to ``target`` (atomically); returns the member names."""
    prefix = f"inferpack-support-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(target, 0o644) as stream, tarfile.open(fileobj=stream, mode="w:gz") as tar:
        out = _Writer(tar, prefix)
        out.text("README.txt", README)
        out.text("results.txt", "\n".join(text_lines(report, opts)) + "\n")
        out.text("results.json", dumps(report, opts) + "\n")
        out.json("versions.json", {**versions(), "docker": _docker_versions()})
        with tempfile.TemporaryDirectory() as scratch:
            request = Path(scratch) / "request.json"
            write_request(request, this_machine())
            out.file("fingerprint-request.json", request)
        if opts.package_root is not None:
            out.file("package-manifest.json", opts.package_root / MANIFEST)
        for layout in chosen_layouts(opts):
            try:
                _service(out, load_service(layout), opts)
            except Exception as exc:  # a bundle with a gap beats none
                out.text(f"services/{layout.name}/error.txt", f"{type(exc).__name__}: {exc}\n")
    return out.names
