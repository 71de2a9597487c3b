"""The one rule for deploy names: they appear in URLs, container names, folders and licenses."""

from __future__ import annotations

import re

DEPLOY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEPLOY_NAME_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def is_deploy_name(name: str) -> bool:
    return DEPLOY_NAME.fullmatch(name) is not None
