"""What one running server holds, under a single typed app key."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from inferpack.bundle import ROUTE_BY_TASK, ModelSpec
from inferpack.config import ServerConfig
from inferpack.easydl import LogIds
from inferpack.errors import InferpackError, ModelUnavailable
from inferpack.httpio.body import BodyLimits
from inferpack.license.guard import LicenseGuard, RefusedLicense
from inferpack.model import Model
from inferpack.runtime.batcher import DynamicBatcher
from inferpack.server.admission import Admission
from inferpack.server.metrics import Metrics
from inferpack.server.ratelimit import TokenBucket


@dataclass
class ServerState:
    config: ServerConfig
    spec: ModelSpec
    metrics: Metrics
    decode_pool: ThreadPoolExecutor
    body_limits: BodyLimits
    admission: Admission
    log_ids: LogIds = field(default_factory=LogIds)
    model: Model | None = None
    batcher: DynamicBatcher | None = None
    load_error: str | None = None
    license: LicenseGuard | RefusedLicense | None = None  # None: development mode (--no-license)
    started_at: float = field(default_factory=time.time)
    _rate: TokenBucket | None = None

    @property
    def model_loaded(self) -> bool:
        return self.model is not None and self.batcher is not None

    def require_license(self) -> None:
        """Raises 337000 with the reason unless the license verifies (no check in development mode)."""
        if self.license is not None:
            self.license.require()

    def license_refusal(self) -> str | None:
        """Why the license refuses work now (batch jobs wait meanwhile), or None."""
        try:
            self.require_license()
        except InferpackError as exc:
            return exc.error_msg
        return None

    def license_summary(self, identity: bool) -> dict[str, Any]:
        """``identity``: licensee, issue id, key id, dates and limits too (for local callers only)."""
        if self.license is None:
            return {"required": False, "status": "development mode: no license enforced"}
        state = self.license.state
        verdict = {"required": True, "valid": state.valid, "reason": state.reason}
        if not identity:
            return verdict
        warning = {"clock_warning": self.license.clock_unsaved} if self.license.clock_unsaved else {}
        return {**verdict, **state.summary(), **warning}

    def admit_rate(self) -> None:
        """Raises 336100 beyond the licensed max_qps (which a new license may change at any time)."""
        max_qps = self.license.max_qps if self.license is not None else None
        if max_qps is None:
            return
        if self._rate is None or self._rate.rate != max_qps:
            self._rate = TokenBucket(max_qps)
        if not self._rate.try_acquire():
            raise ModelUnavailable(f"over the licensed rate of {max_qps:g} requests per second")

    def readiness_problems(self) -> list[str]:
        problems = []
        if self.license is not None and not self.license.state.valid:
            problems.append(f"license: {self.license.state.reason}")
        if self.load_error is not None:
            problems.append(f"model failed to load: {self.load_error}")
        elif not self.model_loaded:
            problems.append("model is loading")
        return problems

    def serving(self) -> tuple[Model, DynamicBatcher]:
        """The model and batcher, or 336100 while they are still loading."""
        if self.model is None or self.batcher is None:
            raise ModelUnavailable("the model is still loading", retry_after_s=5)
        return self.model, self.batcher


STATE = web.AppKey("inferpack_state", ServerState)
LOG_ID = web.RequestKey("log_id", int)
ERROR_CODE = web.RequestKey("error_code", int)


def predict_path(state: ServerState) -> str:
    return f"/{state.config.deploy_name}/{ROUTE_BY_TASK[state.spec.task]}"
