"""Where a deployed service keeps its state on the host: everything under one work root.

<work root>/<NAME>/
  versions/<VERSION>/        installed model versions side by side (model.onnx, model.json, ...)
  current -> versions/<V>    the serving version: switched by an atomic symlink rename
  license/license.lic        the license (the folder is mounted, so a swap is seen live)
  license/host-fingerprint.json   the host's fingerprint request (a record: servers read the host live)
  vendor.pub                 the vendor key the license and packages must be signed with
  state/                     writable by the server: clock guard, engine caches
  state/data/                datasets, jobs and the API key (kept by update, rollback, remove)
  logs/                      server logs
  settings.json              how the service is run (port, runtime, image, GPU, ...)
  start/start-1.sh           recreates the service from settings.json, by itself
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inferpack.names import DEPLOY_NAME_RULE, is_deploy_name

DEFAULT_WORK_ROOT = Path("/opt/inferpack/work")


def work_root(explicit: Path | None = None) -> Path:
    """--work-root, else $INFERPACK_WORK_ROOT, else /opt/inferpack/work."""
    if explicit is not None:
        return explicit
    return Path(os.environ.get("INFERPACK_WORK_ROOT", DEFAULT_WORK_ROOT))


@dataclass(frozen=True)
class ServiceLayout:
    root: Path
    name: str

    def __post_init__(self) -> None:
        if not is_deploy_name(self.name):
            raise ValueError(f"deploy name {self.name!r} is not valid: use {DEPLOY_NAME_RULE}")

    @property
    def home(self) -> Path:
        return self.root / self.name

    @property
    def versions(self) -> Path:
        return self.home / "versions"

    @property
    def current(self) -> Path:
        return self.home / "current"

    @property
    def license_dir(self) -> Path:
        return self.home / "license"

    @property
    def license_file(self) -> Path:
        return self.license_dir / "license.lic"

    @property
    def fingerprint_snapshot(self) -> Path:
        return self.license_dir / "host-fingerprint.json"

    @property
    def vendor_key(self) -> Path:
        return self.home / "vendor.pub"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def data_dir(self) -> Path:
        """The server's data folder (its default: ``state_dir/data``, see config.data_folder)."""
        return self.state_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def answers(self) -> Path:
        return self.home / "answers"

    @property
    def settings(self) -> Path:
        return self.home / "settings.json"

    @property
    def start_script(self) -> Path:
        return self.home / "start" / "start-1.sh"
