"""A small YAML writer for manifests: mappings, lists, strings, numbers, booleans, None.

Every string value is written as a JSON string, which YAML reads as a double-quoted scalar: no
value ("on", "0755", a key id of digits) can be misread as another type or break the structure.
Text of several lines (a settings file, a PEM key) is a literal block, and keys made only of
name characters are written plain, so the files read like hand-written manifests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS
    return key if plain else _quoted(key)


def _literal_block(text: str, indent: str) -> list[str] | None:
    """``|`` and the lines, for text that a literal block keeps byte for byte; else None."""
    lines = text.split("\n")[:-1]
    if not text.endswith("\n") or text.endswith("\n\n") or len(lines) < 2:
        return None
    if not all(line.isprintable() and line.strip() == line.rstrip() == line for line in lines if line):
        return None
    return ["|", *(f"{indent}{line}" if line else "" for line in lines)]


_NOT_YAML = re.compile(
    "[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]"
)  # YAML: no DEL/C1, no extra line breaks


def _quoted(text: str) -> str:
    """A double-quoted scalar: JSON's escapes, plus \\uXXXX for what YAML refuses or breaks lines at."""
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _lines(value: Any, indent: str) -> list[str]:
    if isinstance(value, Mapping):
        if not value:
            return [indent + "{}"]
        out = []
        for key, item in value.items():
            head = f"{indent}{_key(str(key))}:"
            if isinstance(item, Mapping | list | tuple) and item:
                out += [head, *_lines(item, indent + "  ")]
            elif isinstance(item, str) and (block := _literal_block(item, indent + "  ")):
                out += [f"{head} {block[0]}", *block[1:]]
            else:
                out.append(f"{head} {_inline(item)}")
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            return [indent + "[]"]
        out = []
        for item in value:
            if isinstance(item, Mapping | list | tuple) and item:
                first, *rest = _lines(item, indent + "  ")
                out += [f"{indent}- {first.lstrip()}", *rest]
            else:
                out.append(f"{indent}- {_inline(item)}")
        return out
    return [indent + _scalar(value)]


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return _scalar(value)


def dump_documents(documents: Sequence[Mapping[str, Any]]) -> str:
    """``---``-separated YAML documents."""
    return "".join("---\n" + "\n".join(_lines(doc, "")) + "\n" for doc in documents)
