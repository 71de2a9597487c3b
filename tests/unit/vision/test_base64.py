from __future__ import annotations

import base64
import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferpack.errors import Base64DecodeFailed, MissingParameter, PayloadTooLarge
from inferpack.vision.decode import decode_base64_image
from inferpack.vision.limits import ImageLimits

PAYLOAD = bytes(range(256)) * 3 + b"xy"  # 770 bytes: one '=' of padding


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(
    "text",
    [
        b64(PAYLOAD),
        base64.encodebytes(PAYLOAD).decode(),  # MIME: a newline every 76 characters
        base64.encodebytes(PAYLOAD).decode().replace("\n", "\r\n"),
        "  " + b64(PAYLOAD) + "\n",
        " ".join(b64(PAYLOAD)[i : i + 4] for i in range(0, len(b64(PAYLOAD)), 4)),
        b64(PAYLOAD).rstrip("="),  # padding left out
        base64.encodebytes(PAYLOAD).decode().replace("=", ""),
    ],
    ids=["plain", "mime-lines", "crlf", "surrounding-space", "spaced", "unpadded", "unpadded-lines"],
)
def test_decodes_standard_base64_tolerating_whitespace_and_missing_padding(text: str) -> None:
    assert decode_base64_image(text) == PAYLOAD


def test_missing_padding_of_two_is_tolerated() -> None:
    assert decode_base64_image(b64(b"abcd").rstrip("=")) == b"abcd"


@pytest.mark.parametrize(
    "prefix", ["data:image/jpeg;base64,", "data:image/png;base64,", "DATA:image/png;base64,", "\n data:,"]
)
def test_a_data_uri_header_is_refused_with_advice(prefix: str) -> None:
    with pytest.raises(Base64DecodeFailed, match="data: URI header; strip it") as caught:
        decode_base64_image(prefix + b64(PAYLOAD))
    assert caught.value.code == 336003


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("QUJD!", "not valid base64"),
        ("QUJDRA==QUJD", "not valid base64"),  # data after padding
        ("QUJDR", "not valid base64"),  # one character over a multiple of 4 cannot be padded
        ("=QUJD", "not valid base64"),
        ("QUJD\x00", "not valid base64"),
        ("a-b_", "URL-safe"),
        ("QUJDé", "non-ASCII"),
    ],
)
def test_invalid_base64_is_refused(text: str, detail: str) -> None:
    with pytest.raises(Base64DecodeFailed, match=detail):
        decode_base64_image(text)


@pytest.mark.parametrize("text", ["", "   ", "\r\n"])
def test_an_empty_image_is_a_missing_parameter(text: str) -> None:
    with pytest.raises(MissingParameter, match="image is empty"):
        decode_base64_image(text)


def test_the_size_limit_counts_base64_characters_and_is_inclusive() -> None:
    limits = ImageLimits(max_base64_bytes=8)
    assert decode_base64_image("QUJDREVG", limits) == b"ABCDEF"
    with pytest.raises(PayloadTooLarge, match="9 bytes of base64; the limit is 8") as caught:
        decode_base64_image("QUJDREVG ", limits)
    assert caught.value.code == 336004 and caught.value.http_status == 413


def test_the_default_limit_is_4_mib_and_is_checked_before_any_work() -> None:
    text = "A" * (4 * 1024 * 1024 + 1)
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge):
        decode_base64_image(text)
    assert time.perf_counter() - started < 0.01
    assert len(decode_base64_image(text[:-1])) == 3 * 1024 * 1024


DOCUMENTED = (Base64DecodeFailed, MissingParameter, PayloadTooLarge)


@settings(max_examples=500, deadline=1000)
@given(st.one_of(st.text(max_size=200), st.text("ABCDabcd0189+/=-_ \n\r\t", max_size=200)))
def test_arbitrary_text_gives_bytes_or_a_documented_error(text: str) -> None:
    with contextlib.suppress(DOCUMENTED):
        assert isinstance(decode_base64_image(text), bytes)


@settings(max_examples=300, deadline=1000)
@given(
    payload=st.binary(min_size=1, max_size=300),
    strip_padding=st.booleans(),
    wrap=st.integers(0, 80),
)
def test_every_payload_round_trips(payload: bytes, strip_padding: bool, wrap: int) -> None:
    text = b64(payload)
    if strip_padding:
        text = text.rstrip("=")
    if wrap:
        text = "\n".join(text[i : i + wrap] for i in range(0, len(text), wrap))
    assert decode_base64_image(text) == payload
