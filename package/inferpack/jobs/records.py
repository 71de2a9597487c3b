"""A job's description and state, as kept in its ``job.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

JobKind = Literal["predict", "evaluate", "label"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
KINDS: tuple[JobKind, ...] = get_args(JobKind)
FINISHED: tuple[JobState, ...] = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    dataset: str
    created: float
    total: int  # images in the dataset
    threshold: float | None = None  # detection score floor for the results (None: the model's)
    state: JobState = "queued"
    started: float | None = None
    finished: float | None = None
    done: int = 0  # images with a result line (an error counts: it is that image's result)
    errors: int = 0
    reason: str | None = None  # why it failed
    summary: dict[str, Any] = field(default_factory=dict)  # headline measures of an evaluation
    config: dict[str, Any] = field(default_factory=dict)  # a labeling task's (inferpack.labeling)

    @property
    def finished_state(self) -> bool:
        return self.state in FINISHED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Job:
        return cls(**raw)

    def with_(self, **changes: Any) -> Job:
        return replace(self, **changes)
