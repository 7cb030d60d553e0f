"""Knowledge files as part of a flow revision.

A ``faq`` provider names a knowledge file (``knowledge: kb/faq.yaml``). When a
flow is compiled from its files, the text of every such file is read, checked and
attached to the compiled flow, and the revision hash covers it: a revision then
says exactly what the FAQ answers were, on every worker and on every replay, and
an edit of the knowledge file is a new revision like an edit of the flow. That
is what lets workflow code answer an offline chain itself (engine.ai.offline_chain).

A provider with a ``profile`` takes its settings from flowdesk.yaml, which is not
part of the revision, so its knowledge is not attached; nor is a revision's that
was stored before knowledge was (it compiles as it did, and its answers come from
the AI activity, which reads the file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.errors import FlowdeskError
from engine.flow.faq_knowledge import FaqKnowledge

#: A knowledge file larger than this is refused: it is stored with every revision.
MAX_KNOWLEDGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KnowledgeRef:
    """A provider's ``knowledge`` path, and where the flow document writes it."""

    path: str
    where: tuple[str | int, ...]


def knowledge_refs(data: Mapping[str, Any]) -> Iterator[KnowledgeRef]:
    """The knowledge files a flow's own ``faq`` providers name (profiles' are not the flow's)."""
    for chain_name, chain in (data.get("ai") or {}).items():
        for number, provider in enumerate(chain.get("providers") or ()):
            if provider.get("use") != "faq" or provider.get("profile"):
                continue
            path = provider.get("knowledge")
            if isinstance(path, str) and path:
                yield KnowledgeRef(path, ("ai", chain_name, "providers", number, "knowledge"))


class KnowledgeUnusable(FlowdeskError):
    """A knowledge file that cannot be attached; the text says why."""


def read_knowledge(base_dir: Path, path: str) -> str:
    """The text of the knowledge file ``path`` (relative to ``base_dir``), checked to parse."""
    base = base_dir.resolve()
    file = (base / path).resolve()
    if not file.is_relative_to(base):
        # A flow saved through the API must not read the server's other files (and
        # show them in its diagnostics or its revision).
        raise KnowledgeUnusable(f"knowledge file {path!r} is outside the flows directory; keep it under {base}")
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise KnowledgeUnusable(f"knowledge file {path!r} not found (looked for {file})") from None
    except OSError as exc:
        raise KnowledgeUnusable(f"knowledge file {path!r} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_KNOWLEDGE_BYTES:
        raise KnowledgeUnusable(f"knowledge file {path!r} is larger than {MAX_KNOWLEDGE_BYTES // 1024 // 1024} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KnowledgeUnusable(f"knowledge file {path!r} is not UTF-8 text") from None
    try:
        parse_knowledge(text, path)
    except ValueError as exc:
        raise KnowledgeUnusable(str(exc)) from None
    return text


@lru_cache(maxsize=64)
def parse_knowledge(text: str, path: str = "<knowledge>") -> FaqKnowledge:
    """The knowledge base a text holds (parsed once per text); ValueError if it is unusable."""
    return FaqKnowledge.from_text(text, source=path)


def knowledge_digests(knowledge: Mapping[str, str]) -> dict[str, str]:
    """SHA-256 of each attached text, by path: what the revision hash covers."""
    return {path: hashlib.sha256(text.encode("utf-8")).hexdigest() for path, text in sorted(knowledge.items())}
