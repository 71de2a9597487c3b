"""The workbench's folders under its root: ``datasets/NAME`` (put there by the vendor),
``models/NAME`` (one training run each, see training/layout.py) and ``predictions/KEY.json``.

Names reaching here have passed forms.name (no separators, no leading dot), so every path
stays inside its folder; a symbolic link is never followed out of one.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from inferpack.bundle import MODEL_FILE, SPEC_FILE
from inferpack.errors import Conflict, NotFound
from inferpack.training.config import CONFIG_FILE
from inferpack.training.layout import BEST, BUNDLE, LAST, checkpoint_path


@dataclass(frozen=True)
class Store:
    root: Path

    def __post_init__(self) -> None:
        for folder in (self.datasets, self.models, self.predictions):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    def dataset(self, name: str) -> Path:
        path = self.datasets / name
        if not path.is_dir() or path.is_symlink():
            raise NotFound(f"no data set named {name!r} in {self.datasets}")
        return path

    def model(self, name: str) -> Path:
        path = self.models / name
        if not (path / CONFIG_FILE).is_file() or path.is_symlink():
            raise NotFound(f"no model named {name!r}")
        return path

    def model_names(self) -> list[str]:
        return sorted(p.name for p in self.models.iterdir() if (p / CONFIG_FILE).is_file())

    def delete_model(self, name: str) -> None:
        shutil.rmtree(self.model(name))

    def download(self, name: str) -> bytes:
        """A zip of the model as a bundle (model.onnx + model.json at the top) plus its checkpoints."""
        run_dir = self.model(name)
        bundle = run_dir / BUNDLE
        if not (bundle / MODEL_FILE).is_file():
            raise Conflict(f"model {name!r} has no exported bundle yet: it has not finished an epoch")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in (MODEL_FILE, SPEC_FILE):
                archive.write(bundle / member, member)
            archive.write(run_dir / CONFIG_FILE, CONFIG_FILE)
            for which in (BEST, LAST):
                if checkpoint_path(run_dir, which).is_file():
                    archive.write(checkpoint_path(run_dir, which), f"checkpoints/{which}")
        return buffer.getvalue()
