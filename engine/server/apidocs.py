"""The HTML API reference at ``/schema``: Redoc, served from Flowdesk itself.

Litestar's render plugins load their viewers from CDNs, and a Flowdesk machine
may have no internet at all. The Redoc bundle ships in ``ui/apidocs/`` (see its
README for the version and how to update it) and is served by the ``/ui``
static route, in a wheel as in a checkout. The page carries a Content Security
Policy that allows this server alone: Redoc's footer links a logo on Redocly's
CDN, and with the policy the browser never asks for it (the logo hides itself
when it cannot load).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from litestar import Request
from litestar.openapi.plugins import RedocRenderPlugin

#: Where the vendored bundle is served: the ``/ui`` static route over ``ui/`` (engine.server.app).
REDOC_SCRIPT = "/ui/apidocs/redoc.standalone.js"

#: Nothing but this server. Redoc injects its styles at run time ('unsafe-inline' styles,
#: no inline scripts) and runs its search index in a worker made from a blob: URL.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'"
)


class LocalRedocPlugin(RedocRenderPlugin):
    """Redoc from :data:`REDOC_SCRIPT`, reading the spec from ``openapi.json``; no external host."""

    def __init__(self, *, path: str | Sequence[str] = ("/", "/redoc"), **kwargs: Any) -> None:
        # favicon="": Litestar's default icon is on a CDN.
        super().__init__(js_url=REDOC_SCRIPT, google_fonts=False, path=path, favicon="", **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page: Redoc's ``<redoc spec-url>`` element, so no inline script is needed."""
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec_url = html.escape(self.get_openapi_json_route(request))
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{self.style}
</head>
<body>
<noscript>This page needs JavaScript; the API description itself is at <a href="{spec_url}">{spec_url}</a>.</noscript>
<redoc spec-url="{spec_url}"></redoc>
<script src="{html.escape(self.js_url)}"></script>
</body>
</html>
"""
        return page.encode()


__all__ = ["CONTENT_SECURITY_POLICY", "REDOC_SCRIPT", "LocalRedocPlugin"]
