"""The manifests' YAML writer: whatever it writes, a YAML parser reads back as the same value."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from inferpack.deploy.kubernetes.yamltext import dump_documents

PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize(
    "value",
    [
        {"server.toml": 'deploy_name = "cats"\nport = 8080\n', "vendor.pub": PEM},  # literal blocks
        {"a": "x\n\n", "b": " leading\nx\n", "c": "x\n\ny\n", "d": "tab\there\nx\n", "e": "no newline\nx"},
        {"on": "off", "yes": "no", "0755": "0755", "null": None, "true": True, "1.5": 1.5, "": ""},
        {"list": ["x", {"b": [1, {"c": None}]}, [], {}], "empty": {}, "nested": [["a", "b"]]},
    ],
)
def test_round_trips(value: dict[str, Any]) -> None:
    assert yaml.safe_load(dump_documents([value])) == value


_scalars = st.none() | st.booleans() | st.integers() | st.text()
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)


@given(st.dictionaries(st.text(), _values, max_size=5))
def test_any_document_round_trips(value: dict[str, Any]) -> None:
    assert yaml.safe_load(dump_documents([value])) == value
