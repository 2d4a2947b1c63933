"""The API docs pages (`/schema`, `/schema/swagger`) with no script from elsewhere.

Litestar's render plugins load Scalar or Swagger UI from a public CDN (Scalar at `@latest`):
on a health network without internet the pages are blank, and a third-party script of any
version would run where people paste bearer tokens. Here Swagger UI comes from the
`swagger-ui-py` package (Apache-2.0; its LICENSE is served beside the files), pinned by the
lock file, under `/schema/assets/`, and the page has no inline script, so that its
Content-Security-Policy (adapters/http/hardening.py) can say `script-src 'self'`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import swagger_ui
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath

ASSETS_PATH = "/schema/assets"
SWAGGER_UI_DIR = Path(swagger_ui.__file__).parent / "static"
# The page's start-up, as a file of our own rather than an inline script; no online validator
# (its badge would send the document's address to a third party).
INITIALIZER = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-container",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null,
  });
});
"""
ASSETS: dict[str, tuple[str, str]] = {
    # name: (file in swagger-ui-py's static directory, media type)
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui-standalone-preset.js": ("swagger-ui-standalone-preset.js", "text/javascript"),
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "favicon-32x32.png": ("favicon-32x32.png", "image/png"),
    "LICENSE": ("LICENSE", "text/plain; charset=utf-8"),
}


class LocalSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI from our own assets, at `/schema` and `/schema/swagger`."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
            path=["/", "/swagger"],
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema["info"]["title"])
        return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title}</title>
    {self.favicon}
    <link href="{self.css_url}" rel="stylesheet">
  </head>
  <body>
    <div id="swagger-container"></div>
    <script src="{self.js_url}"></script>
    <script src="{self.standalone_preset_js_url}"></script>
    <script src="{ASSETS_PATH}/initializer.js"></script>
  </body>
</html>
""".encode()


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def docs_asset(name: FromPath[str]) -> Response[bytes]:
    """One of the pinned files, cached for a day (a new release changes nothing else here)."""
    if name == "initializer.js":
        content, media_type = INITIALIZER, "text/javascript"
    elif name in ASSETS:
        file_name, media_type = ASSETS[name]
        content = _asset(file_name)
    else:
        raise NotFoundException(f"no docs asset {name!r}")
    return Response(
        content, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )


@cache
def _asset(file_name: str) -> bytes:
    return (SWAGGER_UI_DIR / file_name).read_bytes()
