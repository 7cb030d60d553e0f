"""``normalize``: trim, drop control characters, collapse runs of spaces, cap the length.

Config: ``max_length`` (default 4000 characters). Line breaks are kept (collapsed
to one between non-empty lines); full-width spaces count as spaces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from engine.pipeline.types import Message, PipelineContext

DEFAULT_MAX_LENGTH = 4000
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def normalize_text(text: str, *, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Trim, drop control characters (keeping line breaks), collapse runs of spaces, cap length."""
    kept = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    lines = [_SPACES.sub(" ", line).strip() for line in kept.splitlines()]
    collapsed = "\n".join(line for line in lines if line)
    return collapsed[:max_length]


class Normalize:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.max_length = int(config.get("max_length", DEFAULT_MAX_LENGTH))
        if self.max_length < 1:
            raise ValueError("max_length must be at least 1")

    def process(self, message: Message, context: PipelineContext) -> Message:
        return message.replace(text=normalize_text(message.text, max_length=self.max_length))
