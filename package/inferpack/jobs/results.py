"""A job's results: one JSON line per image, appended as images finish and fsynced in small
groups, so a killed service loses at most the lines not yet written (the images in flight).

A crash can leave a torn last line; opening the log cuts it off, so the next line starts
clean and the image it belonged to is processed again, once. Lines name their image's index in
the dataset: the set of indices present is what is done.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson


class ResultsLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        """Every complete line, in the order written (not index order)."""
        if not self.path.is_file():
            return []
        lines = []
        for raw in self.path.read_bytes().split(b"\n"):
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # a torn line (only the last can be)
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def repair(self) -> set[int]:
        """Cuts a torn last line off; returns the indices already done."""
        if not self.path.is_file():
            return set()
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with self.path.open("r+b") as stream:
                stream.truncate(len(complete))
                os.fsync(stream.fileno())
        return {int(line["index"]) for line in self.read()}

    def append(self, lines: Iterable[dict[str, Any]]) -> None:
        payload = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        if not payload:
            return
        with self.path.open("ab") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
