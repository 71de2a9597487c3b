"""Logging set-up shared by the server and the CLI: stdout always, plus a rotating file when asked."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", log_dir: Path | None = None, file_name: str = "server.log") -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / file_name, maxBytes=20 * 1024 * 1024, backupCount=5
            )
        )
    logging.basicConfig(level=level.upper(), format=FORMAT, handlers=handlers, force=True)
