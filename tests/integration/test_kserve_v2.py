"""The open inference protocol (KServe v2) routes, driven by the real ``tritonclient[http]``.

Same server, same model and batcher as the EasyDL routes: every answer here is compared with
what the EasyDL route says for the same image.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient
from aiohttp.test_utils import TestClient
from tritonclient.utils import InferenceServerException

from inferpack.demo import demo_model_dir
from inferpack.demo.shapes import detection_scene, sample_detection
from tests.conftest import BLUE, GREEN, RED, b64, encode, solid
from tests.integration.conftest import StartServer
from tests.onnx_models import slow_classifier

Client = TestClient[Any, Any]


def address(client: Client) -> str:
    return f"{client.server.host}:{client.server.port}"


@pytest.fixture
async def triton(start_server: StartServer, colour_model: Path) -> AsyncIterator[tuple[Client, Any]]:
    client = await start_server(colour_model, max_batch_size=4)
    triton = aioclient.InferenceServerClient(address(client))
    yield client, triton
    await triton.close()


def image_input(images: list[bytes], *, binary: bool) -> Any:
    tensor = httpclient.InferInput("image", [len(images)], "BYTES")
    values = images if binary else [b64(image).encode() for image in images]
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_), binary_data=binary)
    return tensor


def text(element: str | bytes) -> str:
    """A BYTES element as tritonclient gives it: str from JSON, bytes from binary data."""
    return element if isinstance(element, str) else element.decode()


def outputs(*names: str, binary: bool) -> list[Any]:
    return [httpclient.InferRequestedOutput(name, binary_data=binary) for name in names]


async def easydl(client: Client, route: str, image: bytes, **params: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/demo/{route}", json={"image": b64(image), **params})
    assert response.status == 200
    results: list[dict[str, Any]] = (await response.json())["results"]
    return results


async def test_server_and_model_metadata_and_readiness(triton: tuple[Client, Any]) -> None:
    _, client = triton
    assert await client.is_server_live()
    assert await client.is_server_ready()
    server = await client.get_server_metadata()
    assert server["name"] == "inferpack" and "binary_tensor_data" in server["extensions"]
    assert await client.is_model_ready("demo")
    assert await client.is_model_ready("demo", "1.0.0")
    assert not await client.is_model_ready("demo", "2")
    assert not await client.is_model_ready("other")
    for version in ("", "1.0.0"):
        meta = await client.get_model_metadata("demo", version)
        assert meta["name"] == "demo" and meta["versions"] == ["1.0.0"]
        assert meta["inputs"] == [
            {"name": "image", "datatype": "BYTES", "shape": [-1]},
            {"name": "images", "datatype": "FP32", "shape": [-1, 3, 32, 32]},
        ]
        assert [o["name"] for o in meta["outputs"]] == ["logits", "labels", "scores"]
    with pytest.raises(InferenceServerException) as unknown:
        await client.get_model_metadata("other")
    assert unknown.value.status() == "404" and "'other' is not served here" in unknown.value.message()


@pytest.mark.parametrize("binary", [False, True], ids=["base64-json", "binary-data"])
async def test_batch_of_images_answers_as_the_easydl_route(triton: tuple[Client, Any], binary: bool) -> None:
    http, client = triton
    images = [encode(solid(RED)), encode(solid(GREEN), ".png"), encode(solid((40, 120, 200)), ".bmp")]
    result = await client.infer(
        "demo",
        [image_input(images, binary=binary)],
        outputs=outputs("logits", "labels", "scores", binary=binary),
        parameters={"top_num": 2},
    )
    assert (result.get_output("labels").get("parameters") is not None) is binary
    labels, scores = result.as_numpy("labels"), result.as_numpy("scores")
    assert labels.shape == scores.shape == (3, 2)
    assert result.as_numpy("logits").shape == (3, 3)
    for row, image in enumerate(images):
        expected = await easydl(http, "ImageClassification", image, top_num=2)
        assert [text(label) for label in labels[row]] == [r["name"] for r in expected]
        assert scores[row].tolist() == pytest.approx([r["score"] for r in expected], rel=1e-6)


async def test_default_output_is_the_raw_tensor_in_binary(triton: tuple[Client, Any]) -> None:
    _, client = triton
    result = await client.infer("demo", [image_input([encode(solid(BLUE))], binary=True)])
    assert result.get_response()["outputs"][0]["name"] == "logits"
    assert [o["name"] for o in result.get_response()["outputs"]] == ["logits"]
    logits = result.as_numpy("logits")
    assert logits.dtype == np.float32 and int(np.argmax(logits[0])) == 2  # blue


async def test_postprocess_parameter_adds_the_answers(triton: tuple[Client, Any]) -> None:
    _, client = triton
    result = await client.infer(
        "demo", [image_input([encode(solid(GREEN))], binary=False)], parameters={"postprocess": True}
    )
    names = [o["name"] for o in result.get_response()["outputs"]]
    assert names == ["logits", "labels", "scores"]
    assert text(result.as_numpy("labels")[0][0]) == "green"


async def test_preprocessed_fp32_input_answers_as_the_image(triton: tuple[Client, Any]) -> None:
    _, client = triton
    # The colour model takes RGB NCHW scaled to [0, 1]: a solid BGR colour is three planes.
    sample = np.zeros((2, 3, 32, 32), np.float32)
    sample[0, 0], sample[1, 2] = 1.0, 1.0  # red, blue
    tensor = httpclient.InferInput("images", list(sample.shape), "FP32")
    tensor.set_data_from_numpy(sample, binary_data=True)
    from_tensor = await client.infer("demo", [tensor], outputs=outputs("logits", binary=True))
    images = [encode(solid(RED), ".png"), encode(solid(BLUE), ".png")]
    from_image = await client.infer("demo", [image_input(images, binary=True)])
    np.testing.assert_allclose(from_tensor.as_numpy("logits"), from_image.as_numpy("logits"), atol=1e-5)


async def test_detector_boxes_equal_the_easydl_route(start_server: StartServer) -> None:
    http = await start_server(demo_model_dir("shapes-detector"), max_batch_size=4)
    rng = np.random.default_rng(77)
    images = [encode(sample_detection()[0])] + [encode(detection_scene(rng)[0]) for _ in range(2)]
    client = aioclient.InferenceServerClient(address(http))
    try:
        result = await client.infer(
            "demo",
            [image_input(images, binary=True)],
            outputs=outputs("labels", "scores", "boxes", "counts", binary=True),
            parameters={"threshold": 0.4},
        )
    finally:
        await client.close()
    counts = result.as_numpy("counts")
    for row, image in enumerate(images):
        expected = await easydl(http, "ObjectDetection", image, threshold=0.4)
        assert counts[row] == len(expected) > 0
        found = result.as_numpy("labels")[row][: counts[row]]
        assert [text(label) for label in found] == [r["name"] for r in expected]
        boxes = result.as_numpy("boxes")[row][: counts[row]].tolist()
        locations = [[r["location"][k] for k in ("left", "top", "width", "height")] for r in expected]
        assert boxes == locations
        assert result.as_numpy("scores")[row][: counts[row]].tolist() == pytest.approx(
            [r["score"] for r in expected], rel=1e-6
        )


async def test_blocking_client_with_binary_data(triton: tuple[Client, Any]) -> None:
    """tritonclient.http's own (gevent) client, in a thread so the server's loop keeps serving."""
    http, _ = triton

    def call() -> Any:
        client = httpclient.InferenceServerClient(address(http))
        try:
            images = [encode(solid(RED)), encode(solid(BLUE))]
            return client.infer(
                "demo", [image_input(images, binary=True)], outputs=outputs("labels", binary=True)
            ).as_numpy("labels")
        finally:
            client.close()

    labels = await asyncio.to_thread(call)
    assert labels[:, 0].tolist() == [b"red", b"blue"]


async def error_of(client: Any, *args: Any, **kwargs: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        await client.infer("demo", *args, **kwargs)
    return caught.value


async def test_errors_in_the_protocol_shape(triton: tuple[Client, Any]) -> None:
    http, client = triton
    bad = await error_of(client, [image_input([b"not an image"], binary=True)])
    assert bad.status() == "400" and bad.message().startswith("Image decode failed")
    too_many = await error_of(client, [image_input([encode(solid(RED))] * 5, binary=True)])
    assert "max batch size is 4" in too_many.message()
    unknown = await error_of(
        client, [image_input([encode(solid(RED))], binary=True)], outputs=outputs("nope", binary=False)
    )
    assert "unknown output 'nope'" in unknown.message()
    top_num = await error_of(
        client, [image_input([encode(solid(RED))], binary=True)], parameters={"top_num": 0}
    )
    assert top_num.message().startswith("Invalid Argument: top_num")
    image = {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["data:image/png;base64,AAAA"]}
    data_uri = await http.post("/v2/models/demo/infer", json={"inputs": [image]})
    assert data_uri.status == 400
    assert (await data_uri.json())["error"].startswith("Base64 decode failed")


def frame(header: bytes, binary: bytes) -> tuple[bytes, dict[str, str]]:
    return header + binary, {"Inference-Header-Content-Length": str(len(header))}


IMAGE_INPUT = (
    b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":%d}}]}'
)


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        (b"{", {}, "Invalid JSON"),
        (b"[]", {}, "must be a JSON object"),
        (b'{"inputs": []}', {}, "non-empty list"),
        (*frame(IMAGE_INPUT % 8, b"\x04\x00\x00\x00abcd"), "Image decode failed"),
        (*frame(IMAGE_INPUT % 100, b"\x04\x00\x00\x00abcd"), "beyond the binary data"),
        (*frame(IMAGE_INPUT % 8, b"\xff\xff\xff\x7fabcd"), "fewer remain"),
        (*frame(IMAGE_INPUT % 3, b"\x04\x00\x00"), "cut short"),
        (*frame(IMAGE_INPUT % 4, b"\x00\x00\x00\x00junk"), "belong to no input"),
        (b"{}", {"Inference-Header-Content-Length": "99"}, "byte count"),
        (b"{}", {"Inference-Header-Content-Length": "-1"}, "byte count"),
        (b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["AAAA"]}]}', {}, "shape [2]"),
        (b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[1e9],"data":[]}]}', {}, "non-negative"),
        (b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1]}]}', {}, "is not one of"),
        (
            b'{"inputs":[{"name":"images","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}',
            {},
            "send 'image'",
        ),
        (b'{"inputs":[{"name":"images","datatype":"INT32","shape":[1],"data":["1"]}]}', {}, "numbers"),
        (b'{"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[99999999999]}]}', {}, "range"),
    ],
)
async def test_hostile_bodies_are_refused(
    triton: tuple[Client, Any], body: bytes, headers: dict[str, str], fragment: str
) -> None:
    http, _ = triton
    response = await http.post("/v2/models/demo/infer", data=body, headers=headers)
    assert response.status == 400
    answer = await response.json()
    assert list(answer) == ["error"] and fragment in answer["error"], answer


async def test_unknown_route_and_method_in_the_protocol_shape(triton: tuple[Client, Any]) -> None:
    http, _ = triton
    missing = await http.get("/v2/models/demo/nothing")
    assert missing.status == 404 and "error" in await missing.json()
    wrong = await http.get("/v2/models/demo/infer")
    assert wrong.status == 405 and "error" in await wrong.json()


async def test_overload_answers_503_with_retry_after(start_server: StartServer, tmp_path: Path) -> None:
    http = await start_server(
        slow_classifier(tmp_path / "slow"), max_batch_size=1, max_inflight=2, max_delay_ms=0
    )
    body = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64(encode(solid(RED)))]}]
    }
    responses = await asyncio.gather(*(http.post("/v2/models/demo/infer", json=body) for _ in range(24)))
    refused = [r for r in responses if r.status == 503]
    assert refused and any(r.status == 200 for r in responses)
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert "Model temporarily unavailable" in (await refused[0].json())["error"]
    metrics = await (await http.get("/metrics")).text()
    assert 'inferpack_requests_total{error_code="336100",route="v2_infer"}' in metrics
    assert 'inferpack_requests_total{error_code="0",route="v2_infer"}' in metrics
