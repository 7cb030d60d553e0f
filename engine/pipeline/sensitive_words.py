"""``sensitive_words``: find listed words (Aho-Corasick) and mask, block or flag the message.

Config (``schemas/flow.schema.json``, ``sensitiveWordsConfig``):

- ``lists``: names of word lists under ``word_lists`` in flowdesk.yaml (files and inline
  words); default ``[default]`` when neither ``lists`` nor ``words`` is given. A name that
  the settings do not define is an error at the first message.
- ``words``: more words or phrases, written in the stage itself.
- ``action``: ``mask`` (default) replaces every character of each hit with ``mask_char``
  (default ``*``), separators inside the hit included, in ``text`` and in ``ai_text`` if
  set, and sets the flag ``sensitive_words`` to the number of hits; ``block`` stops the
  message with a reason that counts the hits without naming them (it is logged) and sends
  ``reply`` if given; ``flag`` lets the text through unchanged and sets the flags
  ``sensitive_words`` (the number of hits) and ``profanity`` (or the name given in
  ``flag``) to true, for a ``switch`` on ``message.flags.profanity``. A message without
  hits passes unchanged, without flags.
- ``traditional``: also match traditional Chinese characters against simplified words and
  the other way round (``媽`` = ``妈``); default false.

Matching is case- and width-insensitive and ignores separators between characters
(``engine.pipeline.words`` folds text and words alike), so ``B A D``, ``b.a.d``, ``ＢＡＤ`` and
``笨 蛋`` all hit. A word that starts or ends with a Latin (or other spaced-script) letter or
digit only hits at a word boundary of the original text: ``ass`` does not hit ``class``, nor
``asshole`` ``glass hole``. Whitespace and apostrophes inside such a hit are accepted only between
single letters (``i d i o t``) or where the listed phrase has them (``bad word``), so ``pen is``
and ``he'll`` do not hit ``penis`` and ``hell``. Chinese words have no boundaries.

The automaton is built at the first message and rebuilt when a list file changes: the
files are checked (``os.stat``) at most once a second. A list that fails to re-read keeps
the words read before, with a warning in the log.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick

from engine.pipeline.types import Block, Message, PipelineContext
from engine.pipeline.words import (
    FoldIndex,
    fold_table,
    is_combining,
    is_hard_gap,
    is_invisible,
    is_spaced_word_char,
    read_word_file,
)

__all__ = ["SensitiveWords", "WordMatcher"]

log = logging.getLogger(__name__)

ACTIONS = ("mask", "block", "flag")
COUNT_FLAG = "sensitive_words"
DEFAULT_FLAG = "profanity"
#: How often (seconds of ``context.now``) list files are checked for edits.
RELOAD_INTERVAL = 1.0
_KEYS = frozenset({"lists", "words", "action", "reply", "mask_char", "flag", "traditional"})
_FLAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class _Entry:
    """A folded word in the automaton, with what a hit of it must respect in the original text."""

    length: int
    bounded_start: bool  # starts with a spaced-script letter/digit: needs a word boundary before
    bounded_end: bool
    spaced: bool  # only spaced-script letters/digits: whitespace inside a hit must be justified
    breaks: frozenset[int]  # offsets where the listed phrase itself has whitespace ("bad word" -> {3})


def _hard_gaps(text: str, index: FoldIndex, start: int, end: int) -> tuple[set[int], bool]:
    """Offsets (from ``start``) of folded characters preceded by whitespace or an apostrophe in ``text``,
    and whether every original character of ``start..end`` stands apart (``i d i o t``, ``i.d.i.o.t``)."""
    hard: set[int] = set()
    apart = True
    for k in range(start, end):
        before, after = index[k], index[k + 1]
        if after == before:  # two folded characters of one original ("ß" -> "ss")
            continue
        if after == before + 1:
            apart = False
        elif any(is_hard_gap(char) for char in text[before + 1 : after]):
            hard.add(k + 1 - start)
    return hard, apart


def _word_char_near(text: str, position: int, step: int) -> bool:
    """Whether the first visible character from ``position`` in direction ``step`` is a spaced-script
    letter or digit (zero-width and combining characters do not make a boundary)."""
    while 0 <= position < len(text) and is_invisible(text[position]):
        position += step
    return 0 <= position < len(text) and is_spaced_word_char(text[position])


class WordMatcher:
    """An Aho-Corasick automaton over folded words; finds their spans in original text."""

    def __init__(self, words: Iterable[str], *, traditional: bool = False) -> None:
        self._table = fold_table(traditional=traditional, encoded=True)
        plain_table = fold_table(traditional=traditional)
        entries: dict[str, _Entry] = {}
        for word in words:
            key = word.translate(self._table)
            if not key:  # only separators: nothing to find
                continue
            plain = word.translate(plain_table)  # the folded characters themselves, to classify the word
            breaks, _ = _hard_gaps(word, FoldIndex(word, self._table), 0, len(key) - 1)
            if key in entries:  # "bad word" and "badword" fold alike: either spelling is accepted
                breaks |= entries[key].breaks
            entries[key] = _Entry(
                length=len(key),
                bounded_start=is_spaced_word_char(plain[0]),
                bounded_end=is_spaced_word_char(plain[-1]),
                spaced=all(is_spaced_word_char(char) for char in plain),
                breaks=frozenset(breaks),
            )
        self.size = len(entries)
        self._automaton: Any = None
        if entries:
            self._automaton = ahocorasick.Automaton()
            for key, entry in entries.items():
                self._automaton.add_word(key, entry)
            self._automaton.make_automaton()

    def spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` in ``text`` of every hit (overlapping hits each count), in order of their ends."""
        if self._automaton is None or not text:
            return []
        # The common case, no candidate at all, costs one translate and one automaton pass; the map
        # back to original positions is only built for text with candidates ("ass" in "class").
        candidates = list(self._automaton.iter(text.translate(self._table)))
        if not candidates:
            return []
        index = FoldIndex(text, self._table)
        spans = []
        for end, entry in candidates:
            start = end - entry.length + 1
            if self._accepted(entry, start, end, text, index):
                stop = index[end] + 1
                while stop < len(text) and is_combining(text[stop]):  # marks on the last letter go with it
                    stop += 1
                spans.append((index[start], stop))
        return spans

    @staticmethod
    def _accepted(entry: _Entry, start: int, end: int, text: str, index: FoldIndex) -> bool:
        first, last = index[start], index[end]
        if entry.bounded_start and ((start > 0 and index[start - 1] == first) or _word_char_near(text, first - 1, -1)):
            return False
        if entry.bounded_end and (
            (end + 1 < len(index) and index[end + 1] == last) or _word_char_near(text, last + 1, 1)
        ):
            return False
        if entry.spaced:
            hard, apart = _hard_gaps(text, index, start, end)
            return apart or hard <= entry.breaks
        return True


def mask_spans(text: str, spans: Iterable[tuple[int, int]], char: str = "*") -> str:
    """``text`` with every character inside any of ``spans`` replaced by ``char`` (overlaps: the union)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = char * (end - start)
    return "".join(chars)


class SensitiveWords:
    """Finds the words of its lists in ``message.text`` and masks, blocks or flags the message."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(_KEYS))}")
        self.words = _strings(config.get("words", []), "words")
        self.lists = _strings(config.get("lists", [] if self.words else ["default"]), "lists")
        if not self.lists and not self.words:
            raise ValueError("nothing to look for: give `lists` (names under word_lists in flowdesk.yaml) or `words`")
        self.action = config.get("action", "mask")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        self.mask_char = config.get("mask_char", "*")
        if not isinstance(self.mask_char, str) or len(self.mask_char) != 1:
            raise ValueError(f"mask_char must be one character, not {self.mask_char!r}")
        self.flag = config.get("flag", DEFAULT_FLAG)
        if not isinstance(self.flag, str) or not _FLAG_NAME.match(self.flag):
            raise ValueError(f"flag must be a name of letters, digits and _, not {self.flag!r}")
        reply = config.get("reply")
        self.reply = None if reply is None else str(reply)
        self.traditional = config.get("traditional", False)
        if not isinstance(self.traditional, bool):
            raise ValueError(f"traditional must be true or false, not {self.traditional!r}")
        self._lock = threading.Lock()
        self._matcher: WordMatcher | None = None
        self._signature: object = None
        self._failed: object = None
        self._checked_at = 0.0

    def process(self, message: Message, context: PipelineContext) -> Message | Block:
        matcher = self.matcher(context)
        spans = matcher.spans(message.text)
        if not spans:
            return message
        hits = len(spans)
        if self.action == "block":
            # The reason is logged: it counts the words but does not repeat them.
            return Block(f"{hits} listed word{'s' if hits != 1 else ''} matched", reply=self.reply)
        flags = {**message.flags, COUNT_FLAG: hits}
        if self.action == "flag":
            return message.replace(flags={**flags, self.flag: True})
        changes: dict[str, Any] = {"text": mask_spans(message.text, spans, self.mask_char), "flags": flags}
        if message.ai_text:  # what AI providers get instead of the text must not keep the words either
            changes["ai_text"] = mask_spans(message.ai_text, matcher.spans(message.ai_text), self.mask_char)
        return message.replace(**changes)

    def matcher(self, context: PipelineContext) -> WordMatcher:
        """The automaton of the current words: built at first use, rebuilt when a list file changed."""
        matcher = self._matcher
        if matcher is not None and 0 <= context.now - self._checked_at < RELOAD_INTERVAL:
            return matcher
        with self._lock:
            return self._refresh(context)

    def _refresh(self, context: PipelineContext) -> WordMatcher:
        files, words = self._sources(context)
        # stat before reading: an edit made while reading shows up at the next check.
        signature = (files, words, tuple(_file_state(path) for _, path in files))
        matcher = self._matcher
        if matcher is None or signature != self._signature:
            try:
                read = _read_files(files)
            except ValueError as exc:
                if matcher is None:
                    raise
                if signature != self._failed:  # once per broken state, not once a second
                    log.warning("sensitive_words: %s; keeping the words read before", exc)
                    self._failed = signature
            else:
                matcher = self._matcher = WordMatcher([*words, *read], traditional=self.traditional)
                self._signature = signature
        self._checked_at = context.now
        return matcher

    def _sources(self, context: PipelineContext) -> tuple[tuple[tuple[str, Path], ...], tuple[str, ...]]:
        """The ``(list name, file)`` pairs and the inline words of this stage's lists, in order."""
        files: list[tuple[str, Path]] = []
        words = list(self.words)
        for name in self.lists:
            spec = context.word_lists.get(name)
            if spec is None:
                known = ", ".join(sorted(context.word_lists)) or "none"
                raise ValueError(
                    f"unknown word list {name!r} (word_lists in flowdesk.yaml defines: {known}); "
                    "define it there or fix the name in `lists`"
                )
            for raw in spec.get("files") or []:
                path = Path(raw)
                files.append((name, path if path.is_absolute() else context.base_dir / path))
            words.extend(str(word) for word in spec.get("words") or [])
        return tuple(files), tuple(words)


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{key} must be a list of non-empty strings, not {value!r}")
    return list(value)


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _read_files(files: Iterable[tuple[str, Path]]) -> list[str]:
    """The words of the list files; ValueError naming the list and the file that cannot be read."""
    words: list[str] = []
    for name, path in files:
        try:
            words.extend(read_word_file(path))
        except OSError as exc:
            raise ValueError(f"word list {name!r}: cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"word list {name!r}: {path} is not UTF-8 text (byte {exc.start})") from exc
    return words
