"""Dependency-free text matching for Chinese and English: tokens, keyword intents, BM25.

Used by the offline ``classify`` step (:class:`KeywordClassifier`), the offline FAQ
answerer and AI context selection (:class:`BM25Index`).

Tokens: text is NFKC-normalised (full-width letters and digits become ASCII) and
casefolded. Latin-script words are tokens, with English plurals folded
(``orders`` -> ``order``) and a short English stopword list dropped. Chinese and
Japanese script, written without spaces, becomes single characters *and* adjacent
pairs, so ``退款`` is found inside ``我要退款`` without a word segmenter; grammatical
particles (的, 了, 吗, ...) and pairs touching them are dropped.

Weights (:func:`term_weight`): question words (how, what, where, ...) are kept but
count :data:`WEAK_WEIGHT` of a normal word, single Chinese characters half, since a
character alone says less than a pair or a word.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["WEAK_WEIGHT", "BM25Index", "KeywordClassifier", "term_weight", "tokenize"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR_RE = re.compile(f"[{_CJK}]")
_RUN_RE = re.compile(f"([{_CJK}]+)|([^\\W{_CJK}_]+)")
# fmt: off
_EN_STOP = frozenset({
    "a", "an", "the", "i", "me", "my", "mine", "we", "us", "our", "you", "your", "yours", "he", "him",
    "his", "she", "her", "it", "its", "they", "them", "their", "is", "am", "are", "was", "were", "be",
    "been", "being", "do", "does", "did", "done", "to", "of", "in", "on", "at", "by", "for", "with",
    "from", "into", "about", "as", "and", "or", "but", "if", "so", "than", "then", "this", "that",
    "these", "those", "there", "here", "just", "also", "too", "can", "could", "would", "will", "shall",
    "should", "may", "might", "must", "please", "want", "need", "like", "s", "t", "d", "ll", "m", "re",
    "ve"
})
# fmt: on
#: Particles and pronouns that say nothing about what a Chinese message is about.
_CJK_STOP = frozenset("的了吗呢吧啊呀嘛哦么怎何什如我你您他她它是")
_CJK_STOP_PAIRS = frozenset({"请问", "可以", "一下"})
_WEAK = frozenset({"how", "what", "where", "when", "why", "which", "who", "whom", "whose", "哪里", "多少"})
#: Weight of a question word relative to a content word.
WEAK_WEIGHT = 0.3


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Tokens of ``text`` in order of appearance (duplicates kept).

    Text made only of stopwords ("how are you") keeps them, so it is still matchable.
    """
    full, content = _analyse(text)
    return full if keep_stopwords or not content else content


def _analyse(text: str) -> tuple[list[str], list[str]]:
    """All tokens (unfolded) and content tokens (stopwords dropped, plurals folded)."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    full: list[str] = []
    content: list[str] = []
    for match in _RUN_RE.finditer(normal):
        cjk, word = match.groups()
        if word is not None:
            full.append(word)
            if word not in _EN_STOP:
                content.append(_fold_plural(word))
            continue
        for i, char in enumerate(cjk):
            full.append(char)
            if char not in _CJK_STOP:
                content.append(char)
            if i + 1 < len(cjk):
                pair = cjk[i : i + 2]
                full.append(pair)
                if pair not in _CJK_STOP_PAIRS and not (set(pair) & _CJK_STOP):
                    content.append(pair)
    return full, content


def _fold_plural(word: str) -> str:
    # Only unambiguous plural endings; "status", "class", "bus" and "news"-like
    # words ending in -us/-ss/-is/-ws are left alone.
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ws")):
        return word[:-1]
    return word


def term_weight(token: str) -> float:
    """How much a token counts: question words 0.3, one CJK character 0.5, else 1."""
    if token in _WEAK:
        return WEAK_WEIGHT
    return 0.5 if len(token) == 1 and _CJK_CHAR_RE.match(token) else 1.0


def _unique(tokens: Iterable[str]) -> list[str]:
    # dict keeps first-seen order, so sums below are computed in a fixed order.
    return list(dict.fromkeys(tokens))


class KeywordClassifier:
    """Offline intent classification by IDF-weighted overlap with example phrases."""

    def __init__(self, intents: Mapping[str, Sequence[str]]) -> None:
        self._examples: list[tuple[str, list[str]]] = [
            (intent, _example_tokens(example)) for intent, examples in intents.items() for example in examples
        ]
        self._intents = list(intents)
        df = Counter(t for _, tokens in self._examples for t in tokens)
        n = len(self._examples)
        # Smoothed IDF: words shared by many examples (or intents) decide less.
        self._weight = {t: math.log(1 + n / count) * term_weight(t) for t, count in df.items()}

    @property
    def intents(self) -> list[str]:
        """Intent names, in the order ties are broken."""
        return list(self._intents)

    def scores(self, text: str) -> dict[str, float]:
        """Score in 0..1 per intent: the share of its best example's weight found in ``text``."""
        words = set(tokenize(text, keep_stopwords=True))
        words.update(tokenize(text))  # plural-folded forms
        best = dict.fromkeys(self._intents, 0.0)
        for intent, tokens in self._examples:
            total = sum(self._weight[t] for t in tokens)
            if total > 0:
                found = sum(self._weight[t] for t in tokens if t in words)
                best[intent] = max(best[intent], found / total)
        return best

    def classify(self, text: str) -> tuple[str | None, float]:
        """The best intent and its score; ``(None, 0.0)`` if nothing matches at all."""
        best_intent: str | None = None
        best_score = 0.0
        for intent, score in self.scores(text).items():
            if score > best_score:  # strictly greater: earlier intents win ties
                best_intent, best_score = intent, score
        return best_intent, round(best_score, 6)


def _example_tokens(example: str) -> list[str]:
    full, content = _analyse(example)
    # An example of little substance ("how are you", "你好") is matched on all its
    # words; otherwise "how do I order" would fully match "how are you" on "how".
    if sum(term_weight(t) for t in _unique(content)) < 1:
        return _unique(full)
    return _unique(content)


class BM25Index:
    """BM25 Okapi ranking (k1=1.5, b=0.75) over a fixed list of documents.

    IDF is ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (never negative) times
    :func:`term_weight`; repeated query words count once.
    """

    def __init__(self, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._docs = [Counter(tokenize(doc)) for doc in documents]
        self._lengths = [sum(doc.values()) for doc in self._docs]
        n = len(self._docs)
        self._avgdl = (sum(self._lengths) / n) if n else 0.0
        df = Counter(t for doc in self._docs for t in doc)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) * term_weight(t) for t, c in df.items()}

    def __len__(self) -> int:
        return len(self._docs)

    def _term(self, term: str, index: int) -> float:
        tf = self._docs[index].get(term, 0)
        if not tf:
            return 0.0
        norm = 1 - self.b + self.b * (self._lengths[index] / self._avgdl if self._avgdl else 1.0)
        return self._idf[term] * tf * (self.k1 + 1) / (tf + self.k1 * norm)

    def score(self, query: str, index: int) -> float:
        """BM25 score of document ``index`` for ``query``."""
        return sum(self._term(t, index) for t in _unique(tokenize(query)))

    def self_score(self, index: int) -> float:
        """Score of a document against its own text: the most a query can reach on it."""
        return sum(self._term(t, index) for t in self._docs[index])

    def search(self, query: str, k: int = 5) -> list[tuple[int, float]]:
        """Up to ``k`` ``(document index, score)`` pairs with score > 0, best first."""
        terms = _unique(tokenize(query))
        scored = []
        for index in range(len(self._docs)):
            value = sum(self._term(t, index) for t in terms)
            if value > 0:
                scored.append((index, value))
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored[: max(k, 0)]
