"""Which earlier turns go to the AI vendor with the customer's message.

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
from collections.abc import Sequence

from engine.ai.types import Turn
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
_TURN_OVERHEAD_TOKENS = 4
_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD_RE = re.compile(r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


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
