"""Images with their boxes drawn (truth green, prediction red), as inline JPEG data URIs, so a
report is one self-contained file."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2

from inferpack.evaluation.detection import Box
from inferpack.vision.decode import decode_image

MAX_SIDE = 480
TRUTH_BGR = (60, 180, 60)
PREDICTION_BGR = (40, 40, 230)


def annotated_data_uri(
    image: bytes, truth: Sequence[Box], predictions: Sequence[Box], caption: str = ""
) -> str:
    """``image``: the file's bytes; boxes in its pixels. Shrunk to at most MAX_SIDE px a side."""
    decoded = decode_image(image)
    scale = min(1.0, MAX_SIDE / max(decoded.width, decoded.height))
    size = (max(1, round(decoded.width * scale)), max(1, round(decoded.height * scale)))
    pixels = cv2.resize(decoded.pixels, size, interpolation=cv2.INTER_AREA)
    for boxes, colour in ((truth, TRUTH_BGR), (predictions, PREDICTION_BGR)):
        for box in boxes:
            top_left = (round(box.x * scale), round(box.y * scale))
            bottom_right = (round((box.x + box.w) * scale), round((box.y + box.h) * scale))
            cv2.rectangle(pixels, top_left, bottom_right, colour, 2)
            text = box.label if colour == TRUTH_BGR else f"{box.label} {box.score:.2f}"
            origin = (
                top_left[0] + 2,
                max(12, top_left[1] - 3) if colour == TRUTH_BGR else bottom_right[1] - 4,
            )
            cv2.putText(pixels, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    if caption:
        cv2.putText(
            pixels, caption, (4, size[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("could not encode the annotated image")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
