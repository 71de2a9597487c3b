"""The gate a backend must pass before it gets traffic: ready, and a real prediction that works.

The prediction uses a generated sample image; its answer is recorded beside the version, so
trouble_shooting can later tell a model that loads but answers differently.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inferpack.bundle import ROUTE_BY_TASK, read_bundle
from inferpack.deploy import loopback
from inferpack.deploy.layout import ServiceLayout
from inferpack.fileio import write_atomic

PROGRESS_EVERY_S = 10.0  # how often a long wait says it is still waiting, and why


class GateFailed(RuntimeError):
    """The backend did not become ready, or its prediction failed; the message says how."""


def readiness(url: str, timeout_s: float) -> str | None:
    """None when ``url``/readyz answers 200, else why not: the server's reasons (or the front's
    error message), or the connection failure."""
    try:
        with loopback.opener.open(f"{url}/readyz", timeout=timeout_s) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        reasons = (body.get("reasons") or [body.get("error_msg", "")]) if isinstance(body, dict) else []
        return f"HTTP {exc.code}: " + "; ".join(str(r) for r in reasons if r)
    except OSError as exc:
        return f"not answering ({getattr(exc, 'reason', exc)})"


def _only_unlicensed(url: str) -> bool:
    """True when ``url``/readyz is 503 for the license alone: the model is loaded and warm."""
    try:
        with loopback.opener.open(f"{url}/readyz", timeout=5):
            return False
    except urllib.error.HTTPError as exc:
        try:
            reasons = json.loads(exc.read() or b"{}").get("reasons") or [""]
        except (ValueError, AttributeError):
            return False
        return all(str(reason).startswith("license: ") for reason in reasons)
    except OSError:
        return False


def wait_ready(
    url: str,
    timeout_s: float,
    still_starting: Callable[[], str | None] = lambda: None,
    *,
    unlicensed: bool = False,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> None:
    """Polls ``url``/readyz until 200. ``still_starting`` returns a reason to give up early
    (e.g. the process exited) or None to keep waiting. ``unlicensed``: the license is known not
    to verify, so a backend whose only problem is the license counts as up (it answers 337000).
    ``progress`` gets a line every ``progress_every_s`` while it waits."""
    started = time.monotonic()
    deadline, next_report = started + timeout_s, started + progress_every_s
    reason = "no answer"
    while time.monotonic() < deadline:
        if (not_ready := readiness(url, timeout_s=5)) is None:
            return
        if progress is not None and time.monotonic() >= next_report:  # a model may take minutes
            next_report += progress_every_s
            progress(
                f"... not ready yet after {time.monotonic() - started:.0f}s of {timeout_s:.0f}s: {not_ready}"
            )
        if unlicensed and _only_unlicensed(url):
            return
        reason = not_ready
        if (fatal := still_starting()) is not None:
            raise GateFailed(f"backend stopped while starting: {fatal}; last readiness: {reason}")
        time.sleep(0.25)
    raise GateFailed(f"backend not ready after {timeout_s:.0f}s: {reason}")


def predict_sample(url: str, deploy_name: str, model_dir: Path) -> dict[str, Any]:
    """POSTs the sample image for the model's task; returns the answer or raises GateFailed."""
    try:
        with loopback.opener.open(_sample_request(url, deploy_name, model_dir), timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise GateFailed(f"sample prediction answered HTTP {exc.code}: {exc.read()[:300]!r}") from None
    except (OSError, ValueError) as exc:
        raise GateFailed(f"sample prediction failed: {exc}") from None
    if not isinstance(answer.get("results"), list):
        raise GateFailed(f"sample prediction answered without results: {answer}")
    return answer


def refused_sample(url: str, deploy_name: str, model_dir: Path) -> str:
    """The 337000 message the backend answers the sample with; GateFailed if it serves it
    (an unlicensed backend that answers would be a bypass) or fails in another way."""
    try:
        with loopback.opener.open(_sample_request(url, deploy_name, model_dir), timeout=30):
            raise GateFailed("the backend served a prediction with no valid license")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            error = json.loads(body)
        except ValueError:
            error = {}
        if exc.code != 403 or not isinstance(error, dict) or error.get("error_code") != 337000:
            raise GateFailed(f"sample prediction answered HTTP {exc.code}: {body[:300]!r}") from None
        return str(error.get("error_msg"))
    except OSError as exc:
        raise GateFailed(f"sample prediction failed: {exc}") from None


def _sample_request(url: str, deploy_name: str, model_dir: Path) -> urllib.request.Request:
    import cv2  # here, not at the top: status and list import this module and need no image stack

    from inferpack.demo.shapes import sample_image

    task = read_bundle(model_dir).spec.task
    ok, jpeg = cv2.imencode(".jpg", sample_image(task))
    if not ok:
        raise GateFailed("could not encode the sample image")
    body = json.dumps({"image": base64.b64encode(jpeg.tobytes()).decode()}).encode()
    return urllib.request.Request(
        f"{url}/{deploy_name}/{ROUTE_BY_TASK[task]}",
        data=body,
        headers={"Content-Type": "application/json"},
    )


def record_sample_answer(layout: ServiceLayout, version: str, answer: dict[str, Any]) -> None:
    layout.answers.mkdir(parents=True, exist_ok=True)
    document = {"version": version, "results": answer["results"]}
    write_atomic(layout.answers / f"{version}.json", json.dumps(document, indent=2).encode())


def recorded_answer(layout: ServiceLayout, version: str) -> list[dict[str, Any]] | None:
    """The sample answer recorded when ``version`` passed its gate, if any."""
    path = layout.answers / f"{version}.json"
    if not path.is_file():
        return None
    results: list[dict[str, Any]] = json.loads(path.read_text())["results"]
    return results
