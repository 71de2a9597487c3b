"""INT8 variants of a model bundle: static quantisation with ONNX Runtime, calibrated on images
through the server's own decode + preprocess, and an accuracy guard against the FP32 model."""

from __future__ import annotations


class QuantizeError(Exception):
    """Pack cannot make (or must refuse) the INT8 variant; ``reason`` is one line for the vendor."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
