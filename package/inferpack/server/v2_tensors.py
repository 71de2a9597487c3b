"""The open inference protocol's (KServe v2) infer request and response bodies, JSON or binary.

A body is JSON, or (the binary-data extension that ``tritonclient`` uses) JSON followed by raw
tensor data: the ``Inference-Header-Content-Length`` header says how many leading bytes are
JSON, and each input with ``parameters.binary_data_size`` takes that many of the bytes that
follow, in input order. A BYTES tensor in binary is each element as a 4-byte little-endian
length and its bytes; in JSON it is a list of strings. Nothing here trusts a size it is told:
every length is checked against the bytes actually received.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from inferpack.errors import InvalidArgument
from inferpack.server.request import load_json_object

HEADER_LENGTH = "Inference-Header-Content-Length"
NUMERIC = {"FP32": np.dtype("<f4"), "INT32": np.dtype("<i4")}
DATATYPES = (*NUMERIC, "BYTES")
MAX_RANK = 8
_LENGTH = struct.Struct("<I")

Values = np.ndarray | tuple[str | bytes, ...]  # numeric array, or BYTES elements (str from JSON)


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    values: Values


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    inputs: tuple[Tensor, ...]
    outputs: tuple[RequestedOutput, ...]  # empty: the model's default outputs
    binary_output: bool  # the request-level binary_data_output, for outputs not listed
    id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= len(body):
        raise InvalidArgument(f"{HEADER_LENGTH} must be a byte count within the {len(body)}-byte body")
    size = int(text)
    return body[:size], memoryview(body)[size:]


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _shape(raw: Any, name: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_RANK:
        raise InvalidArgument(f"input {name!r}: shape must be a list of at most {MAX_RANK} sizes")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise InvalidArgument(f"input {name!r}: shape must hold non-negative integers, got {raw}")
    return tuple(raw)


def _flatten(data: Any) -> list[Any]:
    """Row-major elements of a flat or nested JSON list."""
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _bytes_elements(raw: memoryview, name: str) -> tuple[bytes, ...]:
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise InvalidArgument(f"input {name!r}: a BYTES element's length is cut short")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise InvalidArgument(f"input {name!r}: a BYTES element says {length} bytes, fewer remain")
        elements.append(bytes(raw[offset : offset + length]))
        offset += length
    return tuple(elements)


def _json_values(datatype: str, data: Any, name: str) -> Values:
    flat = _flatten(data)
    if datatype == "BYTES":
        if not all(isinstance(item, str) for item in flat):
            raise InvalidArgument(f"input {name!r}: BYTES data in JSON must be strings")
        return tuple(flat)
    if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in flat):
        raise InvalidArgument(f"input {name!r}: {datatype} data must be numbers")
    try:
        return np.asarray(flat, dtype=NUMERIC[datatype])
    except OverflowError:
        raise InvalidArgument(f"input {name!r}: a value is out of {datatype}'s range") from None


def _binary_values(datatype: str, raw: memoryview, name: str) -> Values:
    if datatype == "BYTES":
        return _bytes_elements(raw, name)
    itemsize = NUMERIC[datatype].itemsize
    if len(raw) % itemsize:
        raise InvalidArgument(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype}")
    return np.frombuffer(raw, dtype=NUMERIC[datatype]).copy()


def _input(raw: Any, binary: memoryview, offset: int) -> tuple[Tensor, int]:
    spec = _object(raw, "each input")
    name = spec.get("name")
    if not isinstance(name, str):
        raise InvalidArgument("each input needs a name")
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise InvalidArgument(f"input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}")
    shape = _shape(spec.get("shape"), name)
    size = _object(spec.get("parameters", {}), "parameters").get("binary_data_size")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= len(binary) - offset:
            raise InvalidArgument(f"input {name!r}: binary_data_size {size!r} is beyond the binary data")
        values = _binary_values(datatype, binary[offset : offset + size], name)
        offset += size
    elif "data" in spec:
        values = _json_values(datatype, spec["data"], name)
    else:
        raise InvalidArgument(f"input {name!r} has neither data nor binary_data_size")
    if len(values) != math.prod(shape):
        raise InvalidArgument(f"input {name!r}: shape {list(shape)} but {len(values)} elements")
    if isinstance(values, np.ndarray):
        values = values.reshape(shape)
    return Tensor(name, datatype, shape, values), offset


def _outputs(raw: Any) -> tuple[RequestedOutput, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidArgument("outputs must be a list")
    outputs = []
    for item in raw:
        spec = _object(item, "each output")
        if not isinstance(spec.get("name"), str):
            raise InvalidArgument("each output needs a name")
        binary = _object(spec.get("parameters", {}), "parameters").get("binary_data", False)
        outputs.append(RequestedOutput(spec["name"], binary is True))
    return tuple(outputs)


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    header, binary = _split(body, header_length)
    payload = load_json_object(header, 'send {"inputs": [...]}, binary data after it')
    raw_inputs = payload.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidArgument("inputs must be a non-empty list")
    inputs, offset = [], 0
    for raw in raw_inputs:
        tensor, offset = _input(raw, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise InvalidArgument(f"{len(binary) - offset} bytes of binary data belong to no input")
    parameters = _object(payload.get("parameters", {}), "parameters")
    request_id = payload.get("id")
    return InferRequest(
        inputs=tuple(inputs),
        outputs=_outputs(payload.get("outputs")),
        binary_output=parameters.get("binary_data_output") is True,
        id=request_id if isinstance(request_id, str) else None,
        parameters=parameters,
    )


def _binary(tensor: Tensor) -> bytes:
    if isinstance(tensor.values, np.ndarray):
        return np.ascontiguousarray(tensor.values, dtype=NUMERIC[tensor.datatype]).tobytes()
    parts = []
    for item in tensor.values:
        data = item.encode() if isinstance(item, str) else item
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)


def _json_data(values: Values) -> list[Any]:
    if isinstance(values, np.ndarray):
        return list(values.reshape(-1).tolist())
    return [item if isinstance(item, str) else item.decode(errors="replace") for item in values]


def encode_infer_response(
    header: dict[str, Any], outputs: Sequence[tuple[Tensor, bool]]
) -> tuple[bytes, int | None]:
    """The body, and the JSON header's length when binary data follows it (else None)."""
    described, chunks = [], []
    for tensor, binary in outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if binary:
            data = _binary(tensor)
            entry["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            entry["data"] = _json_data(tensor.values)
        described.append(entry)
    head = orjson.dumps({**header, "outputs": described}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)
