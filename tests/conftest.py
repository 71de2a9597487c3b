"""Fixtures shared by every test layer: real ONNX models and real encoded images."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.onnx_models import colour_classifier


def encode(image: np.ndarray, ext: str = ".jpg", **params: int) -> bytes:
    flags: list[int] = []
    if ext == ".jpg":
        flags = [cv2.IMWRITE_JPEG_QUALITY, params.get("quality", 95)]
    ok, data = cv2.imencode(ext, image, flags)
    assert ok
    return data.tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def solid(bgr: tuple[int, int, int], width: int = 64, height: int = 48) -> np.ndarray:
    return np.full((height, width, 3), bgr, dtype=np.uint8)


RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR, as OpenCV stores pixels


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_classifier(tmp_path_factory.mktemp("models") / "colour")
