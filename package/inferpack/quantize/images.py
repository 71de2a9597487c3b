"""Image files in a folder, for calibration and evaluation sets on the vendor's machine."""

from __future__ import annotations

from pathlib import Path

from inferpack.quantize import QuantizeError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def image_files(folder: Path) -> list[Path]:
    """Every jpg/png/bmp under ``folder``, sorted; symbolic links are skipped so a set cannot
    reach outside its folder."""
    if not folder.is_dir():
        raise QuantizeError(f"{folder} is not a folder of images")
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.is_symlink()
    )


def evenly(paths: list[Path], limit: int) -> list[Path]:
    """At most ``limit`` of ``paths``, spread over the whole (sorted) list so every class folder
    is represented, not just the first ones."""
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]
