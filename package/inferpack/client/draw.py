"""Draws a prediction onto its image (for ``inferpack predict --draw``); needs OpenCV."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inferpack.client.results import Detections, Prediction
from inferpack.fileio import write_atomic

if TYPE_CHECKING:
    from cv2.typing import MatLike

BOX = (0, 200, 255)  # BGR amber: readable on light and dark images
TEXT = (0, 0, 0)


def _label(pixels: MatLike, text: str, left: int, top: int) -> None:
    import cv2

    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    top = max(top, height + baseline)
    cv2.rectangle(pixels, (left, top - height - baseline), (left + width, top), BOX, cv2.FILLED)
    cv2.putText(pixels, text, (left, top - baseline), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT, 1, cv2.LINE_AA)


def draw(image: bytes, prediction: Prediction) -> MatLike:
    """The image's pixels (as displayed, EXIF applied) with boxes and labels, or the labels listed."""
    try:
        import cv2
        import numpy as np
    except ImportError as missing:
        raise ValueError("drawing needs OpenCV: pip install opencv-python-headless") from missing
    pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("OpenCV cannot decode this image to draw on it")
    if isinstance(prediction, Detections):
        for d in prediction.results:
            box = d.location
            cv2.rectangle(pixels, (box.left, box.top), (box.left + box.width, box.top + box.height), BOX, 2)
            _label(pixels, f"{d.name} {d.score:.2f}", box.left, box.top)
    else:
        for row, label in enumerate(prediction.results):
            _label(pixels, f"{label.name} {label.score:.2f}", 0, 20 * (row + 1))
    return pixels


def save(path: Path, pixels: MatLike) -> None:
    """Writes the drawing in the format its suffix names (.png when it has none)."""
    import cv2

    ok, encoded = cv2.imencode(path.suffix or ".png", pixels)
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot write {path.suffix} images; use .png or .jpg")
    write_atomic(path, encoded.tobytes())
