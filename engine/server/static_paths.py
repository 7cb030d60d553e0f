"""Paths the static file router refuses before it touches the file system.

A NUL byte makes ``stat`` raise ``ValueError`` and a segment longer than the file
system allows raises ``ENAMETOOLONG``: both were 500s. Such a path names no file
the server ships, so it is a 400 (control characters) or a 404, never an error.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from engine.server.problems import Problem

#: Longer than any file the UI ships; file systems refuse longer names anyway.
MAX_PATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255


def refuse_odd_static_path(request: Request[Any, Any, Any]) -> None:
    """Litestar ``before_request`` hook of the ``/ui`` router."""
    path = request.scope["path"]
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise Problem(400, "the path holds a control character; no file has such a name")
    segments = path.split("/")
    if (
        len(path) > MAX_PATH_CHARS
        or ".." in segments
        or any(len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES for segment in segments)
    ):
        raise Problem(404, "there is no such file under /ui")
