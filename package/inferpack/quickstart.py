"""``inferpack quickstart``: the first thing a newcomer runs.

Serves the embedded demo detector on ONNX Runtime CPU (the default runtime everywhere), sends
it a generated sample image over real HTTP exactly as a client would, prints the answer and a
curl line to repeat it, then keeps serving until Ctrl-C (or stops at once with ``--once``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from pathlib import Path

import aiohttp
import cv2

from inferpack.config import ServerConfig
from inferpack.demo import demo_model_dir
from inferpack.demo.shapes import sample_image
from inferpack.server.app import start_server

DEMO_DEPLOY_NAME = "demo"
DEMO_MODEL = "shapes-detector"


class PortBusy(RuntimeError):
    """The demo server cannot listen where it was asked to."""


async def quickstart(port: int, host: str, keep_serving: bool, sample_path: Path) -> int:
    config = ServerConfig(
        deploy_name=DEMO_DEPLOY_NAME,
        model_dir=demo_model_dir(DEMO_MODEL),
        host=host,
        port=port,
        development_mode=True,  # a demo on this machine, run by hand: logged as such per request
    )
    try:
        running = await start_server(config)
    except OSError as exc:
        raise PortBusy(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port"
        ) from None
    try:
        await running.wait_ready()
        if not cv2.imwrite(str(sample_path), sample_image("detection")):
            raise OSError(f"cannot write the sample image to {sample_path}")
        url = f"http://{host}:{port}/{DEMO_DEPLOY_NAME}/ObjectDetection"
        image = base64.b64encode(sample_path.read_bytes()).decode()
        async with aiohttp.ClientSession() as session, session.post(url, json={"image": image}) as response:
            answer = await response.json()
        print(f"demo detector serving at {url}")
        print(f"sample image {sample_path} -> HTTP {response.status}:")
        print(json.dumps(answer, indent=2))
        if response.status != 200:
            return 1
        if keep_serving:  # a curl line only for a server that is still there to answer it
            print("try it yourself:")
            print(
                f"  (printf '{{\"image\": \"'; base64 -w0 {sample_path}; printf '\"}}') | "
                f"curl -s -H 'Content-Type: application/json' --data-binary @- {url}"
            )
            print("serving until Ctrl-C")
            await _until_interrupted()
        return 0
    finally:
        await running.stop()


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
