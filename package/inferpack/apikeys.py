"""The API key of a service's data and job routes: made by the operator
(``python3 install.py key NAME``), shown once, kept only as its SHA-256 in the data folder.

Making a new key replaces the old one at once (rotation): the server reads the file on each
request (a stat when it has not changed). A service with no key yet refuses every data route.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

from inferpack.fileio import write_atomic

KEYS_FILE = "api-key.json"
PREFIX = "ipk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(data_dir: Path) -> str:
    """A new random key (192 bits); its hash replaces any earlier key's."""
    key = PREFIX + secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    document = {"sha256": _digest(key), "created": round(time.time(), 3)}
    write_atomic(data_dir / KEYS_FILE, (json.dumps(document) + "\n").encode(), mode=0o644)
    return key


class KeyCheck:
    """Whether a presented key is the service's current one."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEYS_FILE
        self._seen: tuple[int, int] | None = None
        self._digest: str | None = None

    def current_digest(self) -> str | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        if (stat.st_ino, stat.st_mtime_ns) != self._seen:
            self._digest = json.loads(self.path.read_text(encoding="utf-8"))["sha256"]
            self._seen = (stat.st_ino, stat.st_mtime_ns)
        return self._digest

    def accepts(self, key: str) -> bool:
        expected = self.current_digest()
        return expected is not None and hmac.compare_digest(_digest(key), expected)
