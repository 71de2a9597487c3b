"""Server settings.

Every setting has a default, can be set in a TOML file (``--config FILE`` or
``INFERPACK_CONFIG``), overridden by an ``INFERPACK_<NAME>`` environment variable, and
finally by a command-line flag: CLI > env > file > default.

The settings that decide what the license is checked against (``LICENSE_SETTINGS``) come from
the command line only: an environment variable or a config file the operator can edit must not
turn enforcement off or point it at another key, host root or license.

| setting              | default      | meaning                                                       |
|----------------------|--------------|---------------------------------------------------------------|
| host                 | 127.0.0.1    | address to listen on (0.0.0.0 inside the container)           |
| port                 | 8080         | TCP port                                                      |
| deploy_name          | (required)   | the ``{DEPLOY_NAME}`` in the API routes                       |
| model_dir            | (required)   | model bundle folder (model.onnx + model.json)                 |
| backend              | onnxruntime  | engine: onnxruntime, onnxruntime-cuda, onnxruntime-tensorrt,  |
|                      |              | tensorrt, or auto (TensorRT > ORT TensorRT/CUDA > ORT CPU)    |
| device_id            | 0            | GPU index for GPU backends                                    |
| precision            | auto         | model variant: auto (INT8 on the CPU when the bundle has it,  |
|                      |              | else FP32), fp32, or int8 (CPU only; see inferpack.variants)  |
| fp16                 | true         | GPU backends: FP16 where the backend and GPU support it       |
| workspace_mb         | 1024         | TensorRT builder workspace limit (MiB)                        |
| gpu_streams          | 2            | TensorRT: execution contexts/streams (batches in flight)      |
| max_batch_size       | 8            | largest batch gathered into one engine run                    |
| max_delay_ms         | 2.0          | how long the first request of a batch waits for company       |
| max_inflight         | 128          | most requests admitted at once (decoding, queued, running)    |
| latency_target_ms    | 200          | admit what can be answered within this; beyond: 336100 at once |
| decode_workers       | CPU count    | threads decoding and preprocessing images                     |
| cpu_streams          | 2            | ONNX Runtime on the CPU: batches run at once (see below)      |
| intra_op_threads     | 0            | engine threads per batch (0: cores / cpu_streams on the CPU)  |
| max_body_bytes       | 4 MiB + 64 KiB | request body limit (base64 ≤ 4 MiB plus JSON overhead)      |
| body_timeout_s       | 30           | a body must arrive within this, or 408 (slow clients)         |
| max_buffered_bytes   | 128 MiB      | request bodies held at once, all connections; beyond: 336100  |
| license_file         | (none)       | license to enforce (CLI only); none: every prediction 337000  |
| vendor_public_key    | (none)       | vendor's Ed25519 public key (PEM), where the build pins none  |
| host_root            | /            | where the host's identifiers are readable (/host in a container) |
| development_mode     | false        | CLI only (``serve --no-license``): no license check, logged   |
| state_dir            | (none)       | writable folder for the clock guard and engine caches         |
| log_dir              | (none)       | also write the server log to this folder                      |
| license_recheck_s    | 60           | how often the license is re-verified                          |
| reuse_port           | false        | SO_REUSEPORT on the listening socket                          |
| shutdown_timeout_s   | 15           | how long SIGTERM waits for in-flight requests                 |
| data_dir             | state_dir/data | datasets, jobs and the API key (none: no data routes)       |
| max_dataset_bytes    | 2 GiB        | a dataset unpacked (and an upload's body)                     |
| max_dataset_images   | 100000       | images in one dataset                                         |
| max_jobs             | 4            | jobs queued or running at once; more: 336100, retry later     |

On the CPU, ONNX Runtime runs ``cpu_streams`` batches at once, each on ``intra_op_threads``
threads (by default the usable cores shared out: 2 batches of 1 thread on a 2-core machine).
One batch computes while the next is gathered, and no batch stalls at a parallel step waiting
for a thread that a decode worker (or another process) has preempted; ``bench/serving.py``
compares this against one batch on every core (``cpu_streams=1``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from inferpack.errors import ConfigError
from inferpack.names import DEPLOY_NAME_RULE, is_deploy_name
from inferpack.variants import PRECISION_SETTINGS, PrecisionSetting

ENV_PREFIX = "INFERPACK_"
BACKENDS = ("onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt", "auto")


@dataclass(frozen=True)
class ServerConfig:
    deploy_name: str
    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    backend: str = "onnxruntime"
    device_id: int = 0
    precision: PrecisionSetting = "auto"
    fp16: bool = True
    workspace_mb: int = 1024
    gpu_streams: int = 2
    max_batch_size: int = 8
    max_delay_ms: float = 2.0
    max_inflight: int = 128
    latency_target_ms: float = 200.0
    decode_workers: int = max(1, len(os.sched_getaffinity(0)))
    cpu_streams: int = 2
    intra_op_threads: int = 0
    max_body_bytes: int = 4 * 1024 * 1024 + 64 * 1024
    body_timeout_s: float = 30.0
    max_buffered_bytes: int = 128 * 1024 * 1024
    license_file: Path | None = None
    vendor_public_key: Path | None = None
    host_root: Path = Path("/")
    development_mode: bool = False
    state_dir: Path | None = None
    log_dir: Path | None = None
    license_recheck_s: float = 60.0
    reuse_port: bool = False
    shutdown_timeout_s: float = 15.0
    data_dir: Path | None = None
    max_dataset_bytes: int = 2 << 30
    max_dataset_images: int = 100_000
    max_jobs: int = 4

    def __post_init__(self) -> None:
        if not is_deploy_name(self.deploy_name):
            raise ConfigError(f"deploy_name must be {DEPLOY_NAME_RULE}, got {self.deploy_name!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
        if self.precision not in PRECISION_SETTINGS:
            raise ConfigError(
                f"precision {self.precision!r} is unknown; choose one of {', '.join(PRECISION_SETTINGS)}"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        for name in (
            "max_batch_size",
            "max_inflight",
            "decode_workers",
            "max_body_bytes",
            "max_buffered_bytes",
            "workspace_mb",
            "gpu_streams",
            "cpu_streams",
            "max_dataset_bytes",
            "max_dataset_images",
            "max_jobs",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_delay_ms < 0 or self.intra_op_threads < 0:
            raise ConfigError("max_delay_ms and intra_op_threads must be ≥ 0")
        if self.license_recheck_s <= 0 or self.body_timeout_s <= 0 or self.latency_target_ms <= 0:
            raise ConfigError("license_recheck_s, body_timeout_s and latency_target_ms must be > 0")
        if self.license_file is not None and self.state_dir is None:
            raise ConfigError("license_file needs state_dir (for the clock guard)")
        if self.license_file is not None and self.development_mode:
            raise ConfigError("a license file and development mode (--no-license) exclude each other")


_FIELDS = {f.name: f for f in fields(ServerConfig)}
LICENSE_SETTINGS = frozenset({"license_file", "vendor_public_key", "host_root", "development_mode"})


def _coerce(name: str, value: Any) -> Any:
    """Turns a TOML/env/CLI value into the field's type, naming the setting when it can't."""
    kind = str(_FIELDS[name].type)
    try:
        if value is None or (isinstance(value, str) and value == "" and "None" in kind):
            return None
        if kind.startswith("Path"):
            return Path(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes", "on")
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot use {value!r} ({kind} expected)") from exc


def load_config(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Merges file < environment < overrides (None values in overrides are ignored); the
    license settings come from ``overrides`` (the command line) only."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file = file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {file}: {exc}") from exc
        unknown = sorted(set(raw) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"config file {file}: unknown settings {', '.join(unknown)}")
        if cli_only := sorted(LICENSE_SETTINGS & set(raw)):
            raise ConfigError(f"config file {file}: {', '.join(cli_only)} can only be given as a flag")
        values.update({k: _coerce(k, v) for k, v in raw.items()})
    for name in _FIELDS.keys() - LICENSE_SETTINGS:  # never from the environment (module doc)
        if ENV_PREFIX + name.upper() in env:
            values[name] = _coerce(name, env[ENV_PREFIX + name.upper()])
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value)
    missing = [n for n in ("deploy_name", "model_dir") if n not in values]
    if missing:
        raise ConfigError(f"missing required settings: {', '.join(missing)}")
    return ServerConfig(**values)


def data_folder(config: ServerConfig) -> Path | None:
    """Where datasets and jobs live: data_dir, else state_dir/data (kept across updates)."""
    if config.data_dir is not None:
        return config.data_dir
    return config.state_dir / "data" if config.state_dir is not None else None


def with_overrides(config: ServerConfig, **changes: Any) -> ServerConfig:
    return replace(config, **{k: _coerce(k, v) for k, v in changes.items()})
