"""The request class of the JSON API: only JSON bodies, and never nested deeper than a person writes.

Litestar parses any body as JSON whatever its Content-Type, and msgspec decodes
nesting until Python's recursion limit raises ``RecursionError`` (a 500). Here a
non-JSON Content-Type is a 415 and nesting beyond :data:`MAX_JSON_DEPTH` a 400,
both as problem details, before the body is decoded.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from litestar import Request

from engine.server.problems import Problem

#: Deepest nesting of arrays and objects a body may have (the flow loader's bound too).
MAX_JSON_DEPTH = 64

#: A JSON string literal: brackets inside one do not nest anything.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (0 for a scalar)."""
    structure = _STRING.sub(b"", body)
    return max(accumulate(_STEP.get(byte, 0) for byte in structure), default=0)


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class ApiRequest(Request[Any, Any, Any]):
    """A request whose body is JSON only when it says so and nests within bounds."""

    async def json(self) -> Any:
        body = await self.body()
        if body:
            media_type = self.content_type[0].lower()
            if not is_json_media_type(media_type):
                raise Problem(
                    415,
                    f"this endpoint takes a JSON body: send `Content-Type: application/json` "
                    f"(got {media_type or 'no Content-Type'!r})",
                )
            # Counting brackets is cheap; the full scan runs only for a body that could be too deep.
            if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
                raise Problem(400, f"the JSON body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels")
        return await super().json()
