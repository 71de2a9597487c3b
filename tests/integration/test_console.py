"""The web console in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

The browser runs in a thread (its calls block) while the test's event loop serves it. A
screenshot of each run is kept in ``.artifacts/`` at the repository root.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from inferpack.demo import demo_model_dir
from inferpack.demo.shapes import sample_detection
from tests.conftest import RED, b64, encode, solid
from tests.integration.conftest import StartServer

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"
THRESHOLD = 0.3  # the page's default
JSON = {"Content-Type": "application/json"}
Browse = Callable[[WebDriver], Any]


def _binary(*names: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    raise AssertionError(f"none of {names} is installed: tests/run.sh installs chromium and chromium-driver")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_binary("chromedriver")))
    yield driver
    driver.quit()


async def in_browser(browser: WebDriver, browse: Browse) -> Any:
    return await asyncio.to_thread(browse, browser)


def open_console(browser: WebDriver, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state")
    )


def upload(browser: WebDriver, path: Path) -> None:
    body = browser.find_element(By.TAG_NAME, "body")
    browser.execute_script("arguments[0].dataset.state = 'sent'", body)
    browser.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(browser, 20).until(lambda b: body.get_attribute("data-state") == "done")


async def test_console_draws_the_apis_boxes(
    start_server: StartServer, browser: WebDriver, tmp_path: Path
) -> None:
    server = await start_server(demo_model_dir("shapes-detector"))
    image = tmp_path / "sample.jpg"
    image.write_bytes(encode(sample_detection()[0]))
    api = await server.post(
        "/demo/ObjectDetection", json={"image": b64(image.read_bytes()), "threshold": THRESHOLD}
    )
    expected = [r["name"] for r in (await api.json())["results"]]
    assert len(expected) == 3

    def browse(b: WebDriver) -> dict[str, Any]:
        open_console(b, str(server.make_url("/demo/")))
        upload(b, image)
        canvas = b.find_element(By.ID, "canvas")
        WebDriverWait(b, 20).until(lambda _: canvas.get_attribute("data-boxes"))
        WebDriverWait(b, 20).until(lambda _: b.find_element(By.ID, "m-requests").text not in ("–", "0"))
        ARTIFACTS.mkdir(exist_ok=True)
        b.save_screenshot(str(ARTIFACTS / "console-detection.png"))
        b.set_window_size(390, 1400)  # a phone's width: one column
        b.save_screenshot(str(ARTIFACTS / "console-phone.png"))
        wide = b.execute_script("return document.documentElement.scrollWidth")
        b.set_window_size(1100, 1000)
        return {
            "boxes": canvas.get_attribute("data-boxes"),
            "labels": [
                li.get_attribute("data-name") for li in b.find_elements(By.CSS_SELECTOR, "#results li")
            ],
            "size": (canvas.get_property("width"), canvas.get_property("height")),
            "task": b.find_element(By.ID, "task").text,
            "license": b.find_element(By.ID, "license").text,
            "requests": b.find_element(By.ID, "m-requests").text,
            "error_hidden": b.find_element(By.ID, "error").get_attribute("hidden"),
            "phone_scroll_width": wide,
            "console_errors": [e for e in b.get_log("browser") if e["level"] == "SEVERE"],
        }

    shown = await in_browser(browser, browse)
    assert shown["labels"] == expected and shown["boxes"] == "3"
    assert shown["size"] == (480, 320)  # the image's own pixels: boxes are drawn where the API put them
    assert shown["task"] == "detection" and "development mode" in shown["license"]
    assert int(shown["requests"]) >= 2 and shown["error_hidden"] is not None
    assert shown["phone_scroll_width"] <= 390  # nothing sticks out sideways on a phone
    assert shown["console_errors"] == []  # nothing refused by the Content-Security-Policy


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.jpg", b"plain text, not an image"),
        ("huge.png", b"\x89PNG" + b"\x00" * (3 * 1024 * 1024 + 4096)),
    ],
)
async def test_console_shows_the_easydl_error(
    start_server: StartServer, browser: WebDriver, tmp_path: Path, name: str, content: bytes
) -> None:
    server = await start_server(demo_model_dir("shapes-detector"))
    path = tmp_path / name
    path.write_bytes(content)
    body = json.dumps({"image": b64(content), "threshold": THRESHOLD}).encode()
    answer = await server.post("/demo/ObjectDetection", data=io.BytesIO(body), headers=JSON)
    api = await answer.json()

    def browse(b: WebDriver) -> str:
        open_console(b, str(server.make_url("/demo/")))
        upload(b, path)
        shown: str = b.find_element(By.ID, "error").text
        return shown

    assert await in_browser(browser, browse) == f"{api['error_code']} {api['error_msg']}"


async def test_console_is_served_with_a_strict_policy(start_server: StartServer, colour_model: Path) -> None:
    server: TestClient[Any, Any] = await start_server(colour_model)
    for path, content_type in (
        ("/demo/", "text/html"),
        ("/demo/console.js", "text/javascript"),
        ("/demo/console.css", "text/css"),
    ):
        response = await server.get(path)
        assert response.status == 200 and response.content_type == content_type
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in policy and "unsafe" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await (await server.get("/demo/")).text()
    assert "<script>" not in page and "<style" not in page  # nothing inline: the policy would block it
    assert re.search(r"<[^>]*\s(on[a-z]+|style)=", page) is None
    redirect = await server.get("/ui", allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["Location"] == "/demo/"


async def test_console_shows_why_the_license_refuses(
    start_server: StartServer, browser: WebDriver, colour_model: Path, tmp_path: Path
) -> None:
    server = await start_server(colour_model, development_mode=False, ready=False)  # no license given
    path = tmp_path / "red.jpg"
    path.write_bytes(encode(solid(RED)))

    def browse(b: WebDriver) -> tuple[str, str]:
        open_console(b, str(server.make_url("/demo/")))
        upload(b, path)
        return b.find_element(By.ID, "license").text, b.find_element(By.ID, "error").text

    license_line, error = await in_browser(browser, browse)
    assert license_line.startswith("invalid: no license given")
    assert error.startswith("337000 Auth check failed: no license given")
