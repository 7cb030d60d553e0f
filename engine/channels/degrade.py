"""Rich replies on plain channels: what a channel does with what it cannot show.

Choices without buttons become a numbered list (a reply of ``2`` is the second
choice again: the flow's ask matches it, ``engine.flow.steps_run.match_choice``); images without image support become
links; text longer than the channel's limit is split at sentence boundaries, then
at spaces, and only as a last resort inside a word. Each function is pure, so
every channel degrades the same way and tests can say exactly what a customer sees.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from engine.channels.types import Capabilities, OutboundMessage

#: The end of a sentence: latin punctuation followed by a space (not a list's "1. "), CJK
#: punctuation, or a line break.
_SENTENCE_END = re.compile(r"(?<=[^\d\s][.!?])\s+|(?<=[。！？；])|\n+")


def numbered_choices(text: str, choices: Sequence[str]) -> str:
    """``text`` followed by the choices as ``1. Yes`` lines."""
    if not choices:
        return text
    listed = "\n".join(f"{number}. {choice}" for number, choice in enumerate(choices, start=1))
    return f"{text}\n\n{listed}" if text else listed


def image_links(text: str, urls: Sequence[str]) -> str:
    """``text`` followed by one link per image."""
    if not urls:
        return text
    links = "\n".join(urls)
    return f"{text}\n{links}" if text else links


def split_text(text: str, limit: int | None) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut where a reader expects a break.

    Line breaks inside a part are kept; the whitespace at a cut is dropped.
    """
    if limit is None or len(text) <= limit:
        return [text]
    if limit < 1:
        raise ValueError("a channel's text limit must be at least one character")
    parts: list[str] = []
    current = ""
    for segment in _sentences(text):
        for piece in _fit(segment, limit):
            if len((current + piece).strip()) <= limit:
                current += piece
                continue
            if current.strip():
                parts.append(current.strip())
            current = piece
    if current.strip():
        parts.append(current.strip())
    return parts


def degrade(message: OutboundMessage, capabilities: Capabilities) -> list[str]:
    """The texts a plain channel sends for ``message``: choices listed, images linked, split to fit."""
    text = message.text
    if message.choices and not capabilities.choices:
        text = numbered_choices(text, message.choices)
    if not capabilities.images:
        text = image_links(text, [a.url for a in message.attachments if a.kind == "image" and a.url])
    return split_text(text, capabilities.max_text_length)


def _sentences(text: str) -> list[str]:
    """The text cut after each sentence end, every character kept (separators stay with the sentence)."""
    cuts = [match.end() for match in _SENTENCE_END.finditer(text)]
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _fit(segment: str, limit: int) -> list[str]:
    """A segment in pieces of at most ``limit`` (spaces kept): at spaces, else hard cuts."""
    if len(segment.strip()) <= limit:
        return [segment]
    pieces: list[str] = []
    for word in re.split(r"(?<= )", segment):
        rest = word
        while len(rest.strip()) > limit:  # a word (or CJK run) longer than the limit: cut it
            pieces.append(rest[:limit])
            rest = rest[limit:]
        if rest:
            pieces.append(rest)
    return pieces
