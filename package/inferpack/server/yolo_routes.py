"""The seed's YOLO API routes, as its curl examples call them (``reference/yolo-training-api.txt``):

POST /yolo/predict (access_key, dataset_id: form fields or JSON) -> {"url": ".../yolo/output?key=KEY"}
GET  /yolo/output?key=KEY -> {"done", "results": [{"image", "boxes": [{"class","score","x","y","w","h"}]}]}
GET  /yolo/validate?dataset=ID -> {"valid", "message"}

x, y, w, h are the box's centre and size relative to the image (0-1), as the seed's label rows.
A classification model answers its best class as one box over the whole image.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from inferpack.errors import MissingParameter
from inferpack.server.data import read_fields, services
from inferpack.server.data_routes import create_job, sorted_lines, validation
from inferpack.server.middleware import json_response


async def yolo_predict(request: web.Request) -> web.Response:
    fields = await read_fields(request)
    state, data = services(request, fields)
    job = create_job(state, data, fields, "predict")
    return json_response({"url": f"{request.scheme}://{request.host}/yolo/output?key={job.id}"})


def _boxes(line: dict[str, Any]) -> list[dict[str, Any]]:
    width, height = line["width"], line["height"]
    boxes = []
    for r in line["results"]:
        loc = r.get("location")
        if loc is None:  # classification: the best class, over the whole image
            boxes.append({"class": r["name"], "score": r["score"], "x": 0.5, "y": 0.5, "w": 1.0, "h": 1.0})
            break
        boxes.append({
            "class": r["name"], "score": r["score"],
            "x": (loc["left"] + loc["width"] / 2) / width, "y": (loc["top"] + loc["height"] / 2) / height,
            "w": loc["width"] / width, "h": loc["height"] / height,
        })  # fmt: skip
    return boxes


async def yolo_output(request: web.Request) -> web.Response:
    _, data = services(request)
    key = request.query.get("key")
    if not key:
        raise MissingParameter("the key query parameter is missing: /yolo/output?key=KEY")
    job = data.jobs.get(key)
    results = []
    for line in sorted_lines(data, job.id):
        name = line["image"].rsplit("/", 1)[-1]
        if "error" in line:
            results.append({"image": name, "boxes": [], "error": line["error"]["error_msg"]})
        else:
            results.append({"image": name, "boxes": _boxes(line)})
    return json_response({"done": job.finished_state, "state": job.state, "results": results})


async def yolo_validate(request: web.Request) -> web.Response:
    state, data = services(request)
    dataset_id = request.query.get("dataset")
    if not dataset_id:
        raise MissingParameter("the dataset query parameter is missing: /yolo/validate?dataset=ID")
    answer = await validation(state, data, dataset_id)
    return json_response({"valid": answer["valid"], "message": answer["message"]})


def add_yolo_routes(app: web.Application) -> None:
    app.router.add_post("/yolo/predict", yolo_predict, name="yolo_predict")
    app.router.add_get("/yolo/output", yolo_output, name="yolo_output")
    app.router.add_get("/yolo/validate", yolo_validate, name="yolo_validate")
