"""Paths the static file router refuses before it touches the file system.

A NUL byte makes ``stat`` raise ``ValueError`` and a segment longer than the file
system allows raises ``ENAMETOOLONG``: both were 500s. Such a path names no file
the server ships, so it is a 400 (control characters) or a 404, never an error.

``ui/`` holds the UI apps' sources beside their built files (TypeScript, package
files, ``src/`` folders, the API client generator). Only built files are served:
a path to a source is a 404, as if it were not there, which it is not in a wheel
(pyproject.toml's wheel ``exclude`` lists the same names).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from engine.server.problems import Problem

#: Longer than any file the UI ships; file systems refuse longer names anyway.
MAX_PATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255

#: Folders of UI sources, their dependencies and Python's bytecode: nothing in them is served.
SOURCE_FOLDERS = frozenset({"src", "node_modules", "__pycache__"})
#: Files that are sources, not built output: TypeScript, Python, package and compiler configuration.
SOURCE_FILE = re.compile(r".*\.(ts|tsx|mts|cts|py|pyc)|tsconfig.*\.json|package(-lock)?\.json", re.IGNORECASE)


def is_ui_source(path: str) -> bool:
    """Whether ``path`` (``/``-separated, under ``ui/``) is a source file or inside a source folder."""
    segments = path.strip("/").split("/")
    return any(s.lower() in SOURCE_FOLDERS for s in segments) or SOURCE_FILE.fullmatch(segments[-1]) is not None


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
    if is_ui_source(path):
        raise Problem(404, "there is no such file under /ui: only the UI's built files are served")
