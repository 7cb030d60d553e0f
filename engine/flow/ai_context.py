"""Which earlier turns go to the AI vendor with the customer's message.

Pure and deterministic, so the conversation's workflow chooses the turns itself
(the interpreter puts them on its ``CallAI`` command): only what is sent to the
vendor enters workflow history, not the whole kept transcript.

``recent`` sends the latest turns. ``relevance`` ranks earlier turns by BM25
similarity to the current message (the tokenizer of ``engine.flow.textmatch``
handles Chinese without a segmenter), blended with recency, and always keeps the
latest turn and the turn that stated the customer's goal: the first customer
message that says something (not "hi"). A bot answer inherits part of the
relevance of the question before it, so a relevant question travels with its
answer. Both strategies stay within ``max_turns`` and ``max_tokens`` and return
turns oldest first.

Tokens are estimated, not counted with a vendor's tokenizer: one per CJK
character, 4/3 per Latin word, and a few per turn for the message framing. The
estimate errs on the high side, so a budget is not exceeded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.flow.events import CallAI
from engine.flow.model import ContextSpec
from engine.flow.textmatch import BM25Index, tokenize

#: Weight of relevance against recency in ``relevance`` ranking.
RELEVANCE_WEIGHT = 0.75
#: Share of a question's relevance its answer inherits.
ANSWER_INHERITS = 0.8
#: Content words a customer message needs to count as stating a goal.
GOAL_MIN_WORDS = 2
#: Words of greetings and small talk: they do not state a goal ("Good morning!", "你好，在吗？").
GREETING_WORDS = frozenset(
    {"hello", "hi", "hey", "hiya", "good", "morning", "afternoon", "evening", "day", "thank", "thanks", "there",
     "anyone", "how", "ok", "okay", "yes", "no", "bye", "你好", "您好", "好", "在", "在吗", "喂", "嗨", "哈喽",
     "早", "早上", "上好", "晚上", "谢谢", "谢", "没", "有", "人"}
)  # fmt: skip
#: Transcript roles as vendors name them; other entries (system notes) are not turns.
VENDOR_ROLES = {"user": "user", "bot": "assistant", "agent": "assistant"}
_TURN_OVERHEAD_TOKENS = 4
_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD_RE = re.compile(r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of the conversation: ``role`` is ``user`` or ``assistant``."""

    role: str
    text: str


def history_turns(history: Sequence[Mapping[str, Any]], message: str) -> list[Turn]:
    """A transcript as vendor turns, without system notes and without the message being answered."""
    turns = [Turn(VENDOR_ROLES[h["role"]], str(h["text"])) for h in history if h.get("role") in VENDOR_ROLES]
    # The transcript already holds the message being answered: it is sent as the message, not as context.
    if turns and turns[-1].role == "user" and turns[-1].text == message:
        turns.pop()
    return turns


def ai_history(transcript: Sequence[Mapping[str, Any]]) -> tuple[dict[str, str], ...]:
    """A conversation's transcript as the AI sees it: role and text (redacted for AI where it was)."""
    return tuple({"role": t["role"], "text": t.get("ai_text") or t["text"]} for t in transcript)


def choose_context(
    transcript: Sequence[Mapping[str, Any]], message: str, spec: ContextSpec
) -> tuple[dict[str, str], ...]:
    """The turns of a conversation's transcript to send with ``message``, as plain data for a command."""
    chosen = select_context(history_turns(ai_history(transcript), message), message, spec)
    return tuple({"role": turn.role, "text": turn.text} for turn in chosen)


def call_context(call: CallAI, spec: ContextSpec) -> tuple[Turn, ...]:
    """The turns to send with an AI call.

    A call made by a conversation running an older interpreter carries its whole
    transcript in ``history`` (and no ``context``): the turns are chosen here, as
    the workflow now does when it makes the call.
    """
    if call.history:
        return select_context(history_turns(call.history, call.text), call.text, spec)
    return tuple(Turn(t["role"], t["text"]) for t in call.context)


def estimate_tokens(text: str) -> int:
    return len(_CJK_RE.findall(text)) + math.ceil(len(_WORD_RE.findall(text)) * 4 / 3) + _TURN_OVERHEAD_TOKENS


def select_context(history: Sequence[Turn], message: str, spec: ContextSpec) -> tuple[Turn, ...]:
    """The turns of ``history`` (oldest first, without ``message``) to send along."""
    if spec.max_turns <= 0 or not history:
        return ()
    if spec.strategy == "relevance":
        order = _by_relevance(history, message)
    else:
        order = list(range(len(history) - 1, -1, -1))
    return _within_budget(history, order, spec)


def goal_turn(history: Sequence[Turn]) -> int | None:
    """Index of the first customer turn with enough content words to state a goal."""
    for index, turn in enumerate(history):
        if turn.role == "user" and len(set(tokenize(turn.text)) - GREETING_WORDS) >= GOAL_MIN_WORDS:
            return index
    return None


def _by_relevance(history: Sequence[Turn], message: str) -> list[int]:
    """Indexes of ``history`` in order of preference."""
    count = len(history)
    index = BM25Index([turn.text for turn in history])
    raw = [index.score(message, i) for i in range(count)]
    for i in range(1, count):
        if history[i].role != "user" and history[i - 1].role == "user":
            raw[i] = max(raw[i], ANSWER_INHERITS * raw[i - 1])
    top = max(raw) or 1.0
    score = [RELEVANCE_WEIGHT * raw[i] / top + (1 - RELEVANCE_WEIGHT) * (i + 1) / count for i in range(count)]
    first = [count - 1]
    goal = goal_turn(history)
    if goal is not None and goal != count - 1:
        first.append(goal)
    rest = sorted((i for i in range(count) if i not in first), key=lambda i: (-score[i], -i))
    return first + rest


def _within_budget(history: Sequence[Turn], order: Sequence[int], spec: ContextSpec) -> tuple[Turn, ...]:
    chosen: list[int] = []
    budget = spec.max_tokens
    for i in order:
        if len(chosen) >= spec.max_turns:
            break
        cost = estimate_tokens(history[i].text)
        if cost > budget:
            continue  # a shorter turn further down may still fit
        chosen.append(i)
        budget -= cost
    return tuple(history[i] for i in sorted(chosen))
