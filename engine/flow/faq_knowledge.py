"""The offline FAQ answerer's core: a knowledge file and a confidence-scored lookup.

Knowledge file (YAML)::

    threshold: 0.35              # optional; answers below it are declined
    entries:
      - question: How do I return an item?
        answer: Send it back within 30 days; the label is in your account.
        alternatives: ["Can I send my order back?"]      # optional paraphrases
        keywords: [return, 退货]                        # optional strong hints

A top-level list of entries is accepted too. Matching (Chinese and English) is
BM25 over each entry's question and alternatives, one indexed text each. An entry's
confidence is the best of those texts' *coverage*: the BM25 score of the message
divided by the score the text gets against itself, so a message that contains all
of a question's content words scores 1. Keywords join the ranking as a bonus rather
than as indexed text (a one-keyword text would turn any hit into full coverage):
each keyword found in the message closes half of the remaining gap to 1 (at most
two count), because keywords are hand-picked and reliable.
Unrelated small talk shares few weighted words with any question and stays low.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from engine.flow.textmatch import BM25Index, tokenize

__all__ = ["DEFAULT_THRESHOLD", "FaqAnswer", "FaqEntry", "FaqKnowledge", "knowledge_at"]

#: Confidence below which :meth:`FaqKnowledge.answer` declines.
DEFAULT_THRESHOLD = 0.35
_ENTRY_KEYS = frozenset({"question", "answer", "keywords", "alternatives"})
_MAX_KEYWORD_HITS = 2
#: libyaml's safe loader when PyYAML was built with it (about 5x faster on a large
#: file); the same loader for the AI activity and for workflow code, so both read
#: a knowledge file alike.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One question with its answer, paraphrases and keywords."""

    question: str
    answer: str
    keywords: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FaqAnswer:
    """The chosen answer, how sure the match is (0..1), and the question it answers."""

    answer: str
    confidence: float
    question: str


class FaqKnowledge:
    """A loaded knowledge base; :meth:`answer` finds the best entry for a message."""

    def __init__(
        self,
        entries: tuple[FaqEntry, ...],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        source: str = "<data>",
    ) -> None:
        self.entries = entries
        self.threshold = threshold
        self.source = source
        texts: list[str] = []
        self._owner: list[int] = []  # entry index of each indexed text
        for number, entry in enumerate(entries):
            for text in (entry.question, *entry.alternatives):
                texts.append(text)
                self._owner.append(number)
        self._index = BM25Index(texts)
        self._self_scores = [self._index.self_score(i) for i in range(len(texts))]
        self._keywords = [[set(tokenize(k, keep_stopwords=True)) for k in entry.keywords] for entry in entries]

    @classmethod
    def load(cls, path: str | Path) -> FaqKnowledge:
        """Read a knowledge YAML file; raise ValueError naming the file if it is unusable."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"FAQ knowledge {path}: cannot read the file: {exc}") from exc
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> FaqKnowledge:
        """Build from a knowledge file's text; raise ValueError naming ``source`` if it is unusable."""
        try:
            data = yaml.load(text, Loader=_SAFE_LOADER)
        except yaml.YAMLError as exc:
            raise ValueError(f"FAQ knowledge {source}: invalid YAML: {exc}") from exc
        return cls.from_data(data, source=source)

    @classmethod
    def from_data(cls, data: Any, *, source: str = "<data>") -> FaqKnowledge:
        """Build from parsed YAML data; raise ValueError naming ``source`` and the entry."""
        threshold: Any = DEFAULT_THRESHOLD
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in ("entries", "threshold"))
            if unknown:
                raise ValueError(
                    f"FAQ knowledge {source}: unknown key(s) {', '.join(unknown)}; "
                    "expected `entries` and optional `threshold`"
                )
            threshold = data.get("threshold", DEFAULT_THRESHOLD)
            raw = data.get("entries")
        else:
            raw = data
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"FAQ knowledge {source}: `threshold` must be a number from 0 to 1")
        if not isinstance(raw, list) or not raw:
            raise ValueError(
                f"FAQ knowledge {source}: expected a non-empty list of entries (`entries:` with question/answer items)"
            )
        entries = tuple(_entry(item, f"FAQ knowledge {source}: entry {i}") for i, item in enumerate(raw))
        return cls(entries, threshold=float(threshold), source=source)

    def answer(self, text: str) -> FaqAnswer | None:
        """The best entry for ``text`` if its confidence reaches the threshold, else None."""
        ranked = self.rank(text)
        if not ranked or ranked[0][1] < self.threshold:
            return None
        entry, confidence = self.entries[ranked[0][0]], ranked[0][1]
        return FaqAnswer(answer=entry.answer, confidence=confidence, question=entry.question)

    def rank(self, text: str) -> list[tuple[int, float]]:
        """``(entry index, confidence)`` for every entry with confidence > 0, best first."""
        coverage = [0.0] * len(self.entries)
        for doc, score in self._index.search(text, k=len(self._index)):
            if self._self_scores[doc] > 0:
                owner = self._owner[doc]
                coverage[owner] = max(coverage[owner], min(1.0, score / self._self_scores[doc]))
        words = set(tokenize(text, keep_stopwords=True)) | set(tokenize(text))
        ranked: list[tuple[int, float]] = []
        for number, base in enumerate(coverage):
            hits = sum(1 for keyword in self._keywords[number] if keyword and keyword <= words)
            confidence = 1 - (1 - base) * 0.5 ** min(hits, _MAX_KEYWORD_HITS)
            if confidence > 0:
                ranked.append((number, round(confidence, 4)))
        # Stable sort: among equal confidences the entry written first wins.
        ranked.sort(key=lambda pair: -pair[1])
        return ranked


def _entry(item: Any, where: str) -> FaqEntry:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a mapping with `question` and `answer`")
    unknown = sorted(str(k) for k in item if k not in _ENTRY_KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: question, answer, keywords, alternatives"
        )
    fields: dict[str, str] = {}
    for key in ("question", "answer"):
        value = _text(item.get(key), f"{where}: `{key}`")
        if not value.strip():
            raise ValueError(f"{where}: `{key}` must be a non-empty string")
        fields[key] = value
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("keywords", "alternatives"):
        values = item.get(key) or []
        if not isinstance(values, list):
            raise ValueError(f"{where}: `{key}` must be a list of strings")
        lists[key] = tuple(_text(v, f"{where}: `{key}` item {j}") for j, v in enumerate(values))
    return FaqEntry(fields["question"], fields["answer"], lists["keywords"], lists["alternatives"])


def _text(value: Any, where: str) -> str:
    # YAML turns 404 into an int (fine, it was meant as text) and yes/no into
    # booleans (almost certainly not meant: ask for quotes).
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    hint = " (quote it: YAML reads yes/no/on/off as booleans)" if isinstance(value, bool) else ""
    raise ValueError(f"{where} must be a string, got {type(value).__name__}{hint}")


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> FaqKnowledge:
    return FaqKnowledge.load(path)


def knowledge_at(path: Path) -> FaqKnowledge:
    """The knowledge file at ``path``, parsed once per version on disk."""
    return _load(str(path), path.stat().st_mtime_ns)
