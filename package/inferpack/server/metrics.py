"""Prometheus metrics, one registry per app (so several apps in one process don't collide)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "inferpack_requests",
            "HTTP requests by route and EasyDL error_code (0 = success)",
            ["route", "error_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "inferpack_request_duration_seconds",
            "Time from request received to response ready",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "inferpack_batch_size", "Samples per engine run", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.inference = Histogram(
            "inferpack_inference_duration_seconds",
            "Time of one engine run (one batch)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "inferpack_queue_depth", "Samples waiting for the engine", registry=self.registry
        )
        self.inflight = Gauge(
            "inferpack_inflight_requests", "Prediction requests being handled", registry=self.registry
        )
        self.model_load = Gauge(
            "inferpack_model_load_seconds", "Time to load and warm up the model", registry=self.registry
        )
        self.ready = Gauge("inferpack_ready", "1 when /readyz answers 200", registry=self.registry)
        self.license_valid = Gauge(
            "inferpack_license_valid",
            "1 when the license verifies (or none is required)",
            registry=self.registry,
        )
        self.info = Info("inferpack", "Server version and deployment", registry=self.registry)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def track_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
