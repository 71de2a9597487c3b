"""The open inference protocol (KServe v2, what Triton and ``tritonclient`` speak) over HTTP/REST.

The model is the deployment: its name is the deploy name, its one version the bundle's.
``infer`` takes one input, either
- ``image`` (BYTES, ``[N]`` or ``[N, 1]``): encoded jpg/png/bmp files, base64 strings in
  JSON or raw bytes with the binary-data extension; or
- the ONNX input (FP32, ``[N, C, H, W]`` / ``[N, H, W, C]``): samples the client preprocessed.
It answers the ONNX output and, with the request parameter ``postprocess: true`` or by naming
them in ``outputs``, the EasyDL answers as tensors (``v2_outputs``); ``top_num`` and
``threshold`` are request parameters as on the EasyDL routes. Every image goes through the
same admission, decode pool and batcher as the EasyDL routes (``serving``); errors come back
as ``{"error": "..."}`` from the one error middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import numpy as np
from aiohttp import web

from inferpack import __version__
from inferpack.easydl import V2_PREFIX
from inferpack.errors import InvalidArgument, MissingParameter, PayloadTooLarge, UnknownRoute
from inferpack.model import Model
from inferpack.server.middleware import json_response
from inferpack.server.request import parse_parameters
from inferpack.server.serving import Serving, admitted
from inferpack.server.state import STATE, ServerState
from inferpack.server.v2_outputs import postprocessed, postprocessed_metadata, postprocessed_names, raw_output
from inferpack.server.v2_tensors import (
    HEADER_LENGTH,
    InferRequest,
    Tensor,
    encode_infer_response,
    parse_infer_request,
)
from inferpack.vision.decode import decode_base64_image
from inferpack.vision.preprocess import Transform

IMAGE_INPUT = "image"
EXTENSIONS = ("binary_tensor_data",)
T = TypeVar("T")


def _check_model(request: web.Request, state: ServerState) -> None:
    name = request.match_info["model"]
    if name != state.config.deploy_name:
        raise UnknownRoute(
            f"model {name!r} is not served here; this service serves {state.config.deploy_name!r}"
        )
    version = request.match_info.get("version")
    if version is not None and version != state.spec.version:
        raise UnknownRoute(f"model {name!r} has version {state.spec.version!r}, not {version!r}")


def _dims(shape: tuple[int | None, ...]) -> list[int]:
    return [-1 if d is None else d for d in shape]


async def server_metadata(request: web.Request) -> web.Response:
    return json_response({"name": "inferpack", "version": __version__, "extensions": list(EXTENSIONS)})


async def live(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    problems = request.app[STATE].readiness_problems()
    return json_response({"error": "; ".join(problems)}, status=503) if problems else web.Response(status=200)


async def model_ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _check_model(request, state)
    return web.Response(status=200) if state.model_loaded else json_response({"error": "loading"}, status=503)


async def model_metadata(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _check_model(request, state)
    model, _ = state.serving()
    tensor = model.input_tensor
    return json_response(
        {
            "name": state.config.deploy_name,
            "versions": [state.spec.version],
            "platform": f"inferpack_{model.engine.backend}",
            "inputs": [
                {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
                {
                    "name": tensor.name,
                    "datatype": "FP32",
                    "shape": [-1, *model.spec.input.tensor_shape(1)[1:]],
                },
            ],
            "outputs": [
                {
                    "name": model.output_tensor.name,
                    "datatype": "FP32",
                    "shape": _dims(model.output_tensor.shape),
                },
                *postprocessed_metadata(model),
            ],
        }
    )


async def _all(tasks: Sequence[Awaitable[T]]) -> list[T]:
    """Every image's answer; the first failure is raised only once all are settled, so none
    is left running unobserved."""
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]


def _image(item: str | bytes, serving: Serving) -> bytes:
    limits = serving.model.limits
    if isinstance(item, str):
        return decode_base64_image(item, limits)
    if not item:
        raise MissingParameter("an image element is empty")
    if len(item) > limits.max_raw_bytes:
        raise PayloadTooLarge(f"image is {len(item)} bytes, the limit is {limits.max_raw_bytes}")
    return item


def _batch_size(tensor: Tensor, serving: Serving) -> int:
    count = tensor.shape[0] if tensor.shape else 0
    if count < 1:
        raise MissingParameter(f"input {tensor.name!r} holds no image")
    if count > serving.batcher.max_batch_size:
        raise InvalidArgument(
            f"input {tensor.name!r} holds {count} images; the model's max batch size is "
            f"{serving.batcher.max_batch_size}"
        )
    return count


async def _run(tensor: Tensor, serving: Serving) -> tuple[list[np.ndarray], list[Transform]]:
    model = serving.model
    count = _batch_size(tensor, serving)
    if tensor.datatype == "BYTES":
        if len(tensor.values) != count:
            raise InvalidArgument(f"input {tensor.name!r}: shape [N] or [N, 1], one image per row")
        images = [_image(item, serving) for item in tensor.values]
        answers = await _all([serving.infer_image(image) for image in images])
        return [row for row, _ in answers], [transform for _, transform in answers]
    sample_shape = model.spec.input.tensor_shape(1)[1:]
    if tensor.datatype != "FP32" or tensor.shape[1:] != sample_shape:
        raise InvalidArgument(
            f"input {tensor.name!r} is {tensor.datatype} {list(tensor.shape)}; send {IMAGE_INPUT!r} "
            f"(BYTES) or FP32 [N, {', '.join(map(str, sample_shape))}]"
        )
    assert isinstance(tensor.values, np.ndarray)
    rows = await _all([serving.infer_sample(sample) for sample in tensor.values])
    width, height = model.target_size
    return rows, [Transform(0.0, 0.0, 1.0, 1.0, width, height)] * count


def _outputs(
    parsed: InferRequest,
    settings: dict[str, Any],
    model: Model,
    rows: list[np.ndarray],
    transforms: list[Transform],
) -> list[tuple[Tensor, bool]]:
    post_names = postprocessed_names(model)
    wanted = {o.name: o.binary for o in parsed.outputs}
    if not wanted:
        names = [model.output_tensor.name]
        if settings["postprocess"]:
            names += post_names
        wanted = dict.fromkeys(names, parsed.binary_output)
    known = (model.output_tensor.name, *post_names)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise InvalidArgument(f"unknown output {unknown[0]!r}; the model's outputs are {', '.join(known)}")
    tensors = {model.output_tensor.name: raw_output(model, rows)}
    if any(name in post_names for name in wanted):
        for tensor in postprocessed(
            model, rows, transforms, settings.get("top_num"), settings.get("threshold")
        ):
            tensors[tensor.name] = tensor
    return [(tensors[name], binary) for name, binary in wanted.items()]


def _settings(parsed: InferRequest) -> dict[str, Any]:
    """top_num and threshold checked as on the EasyDL routes, and whether to post-process."""
    postprocess = parsed.parameters.get("postprocess", False)
    if not isinstance(postprocess, bool):
        raise InvalidArgument(f"postprocess must be true or false, got {postprocess!r}")
    return {**parse_parameters(parsed.parameters), "postprocess": postprocess}


async def infer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _check_model(request, state)
    async with admitted(state, request) as serving:
        body = serving.body
        parsed = parse_infer_request(body, request.headers.get(HEADER_LENGTH))
        settings = _settings(parsed)
        if len(parsed.inputs) != 1:
            raise InvalidArgument(f"send one input, {IMAGE_INPUT!r} or the model's FP32 input")
        rows, transforms = await _run(parsed.inputs[0], serving)
        outputs = _outputs(parsed, settings, serving.model, rows, transforms)
    header: dict[str, Any] = {"model_name": state.config.deploy_name, "model_version": state.spec.version}
    if parsed.id is not None:
        header["id"] = parsed.id
    payload, json_length = encode_infer_response(header, outputs)
    if json_length is None:
        return web.Response(body=payload, content_type="application/json")
    return web.Response(
        body=payload, content_type="application/octet-stream", headers={HEADER_LENGTH: str(json_length)}
    )


def add_v2_routes(app: web.Application) -> None:
    model = V2_PREFIX + "/models/{model}"
    versioned = model + "/versions/{version}"
    app.router.add_get(V2_PREFIX, server_metadata, name="v2_server_metadata")
    app.router.add_get(V2_PREFIX + "/health/live", live, name="v2_live")
    app.router.add_get(V2_PREFIX + "/health/ready", ready, name="v2_ready")
    for prefix, suffix in ((model, ""), (versioned, "_versioned")):
        app.router.add_get(prefix, model_metadata, name="v2_model_metadata" + suffix)
        app.router.add_get(prefix + "/ready", model_ready, name="v2_model_ready" + suffix)
        app.router.add_post(prefix + "/infer", infer, name="v2_infer" + suffix)
