"""The web console: ``GET /{DEPLOY_NAME}/`` (and ``/ui``), one page to try the model in a browser.

Four static files shipped in ``console/`` (no CDN: the host is offline). The page calls the
service's own EasyDL route, ``/info`` and ``/metrics`` like any client, so the license, limits
and metrics apply to it unchanged. It is served under a strict Content-Security-Policy: scripts,
styles and fetches from this origin only, no inline code, no framing; the page holds no secret.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

_FILES = Path(__file__).resolve().parent / "console"
CONTENT_TYPES = {
    "index.html": "text/html",
    "console.js": "text/javascript",
    "console.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_console_routes(app: web.Application, deploy_name: str) -> None:
    """The page at ``/{deploy_name}/``, its script and style beside it, and ``/ui`` pointing there."""
    files = {name: (_FILES / name).read_bytes() for name in CONTENT_TYPES}  # a missing one fails at start

    def serve(name: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(
                body=files[name], content_type=CONTENT_TYPES[name], charset="utf-8", headers=SECURITY_HEADERS
            )

        return handler

    async def to_console(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/{deploy_name}/")

    app.router.add_get(f"/{deploy_name}/", serve("index.html"), name="console")
    app.router.add_get(f"/{deploy_name}/console.js", serve("console.js"), name="console_js")
    app.router.add_get(f"/{deploy_name}/console.css", serve("console.css"), name="console_css")
    app.router.add_get(f"/{deploy_name}/favicon.svg", serve("favicon.svg"), name="console_icon")
    app.router.add_get("/ui", to_console, name="console_redirect")
