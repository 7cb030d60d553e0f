"""The offline FAQ answerer: loading knowledge files and answering with confidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.flow.faq_knowledge import FaqAnswer, FaqKnowledge

KNOWLEDGE = """
threshold: 0.35
entries:
  - question: How do I return an item?
    answer: Send it back within 30 days using the label in your account.
    alternatives: ["Can I send my order back?"]
    keywords: [return, 退货]
  - question: What are your opening hours?
    answer: We are open Monday to Friday, 9:00 to 17:00.
  - question: How long does shipping take?
    answer: Three to five working days.
    keywords: [delivery]
  - question: 如何退货
    answer: 请在30天内寄回商品。
  - question: 怎么修改收货地址
    answer: 在"我的订单"里修改地址。
"""


@pytest.fixture
def kb(tmp_path: Path) -> FaqKnowledge:
    path = tmp_path / "faq.yaml"
    path.write_text(KNOWLEDGE, encoding="utf-8")
    return FaqKnowledge.load(path)


def test_load_reads_entries(kb: FaqKnowledge) -> None:
    assert len(kb.entries) == 5
    assert kb.threshold == 0.35
    assert kb.entries[0].alternatives == ("Can I send my order back?",)
    assert kb.source.endswith("faq.yaml")


def test_exact_question_scores_one(kb: FaqKnowledge) -> None:
    result = kb.answer("What are your opening hours?")
    assert result == FaqAnswer(
        answer="We are open Monday to Friday, 9:00 to 17:00.",
        confidence=1.0,
        question="What are your opening hours?",
    )


@pytest.mark.parametrize(
    ("message", "question"),
    [
        ("how can I return my item", "How do I return an item?"),
        ("opening hours?", "What are your opening hours?"),
        ("can I send it back", "How do I return an item?"),  # via the alternative
        ("how long will shipping take to Berlin", "How long does shipping take?"),
        ("我想退货怎么办", "如何退货"),
        ("收货地址写错了，怎么修改", "怎么修改收货地址"),
    ],
)
def test_paraphrases_are_answered_confidently(kb: FaqKnowledge, message: str, question: str) -> None:
    result = kb.answer(message)
    assert result is not None
    assert result.question == question
    assert result.confidence >= 0.5


def test_keyword_hit_is_enough(kb: FaqKnowledge) -> None:
    result = kb.answer("when will my delivery arrive")
    assert result is not None and result.question == "How long does shipping take?"
    assert result.confidence >= 0.5


@pytest.mark.parametrize(
    "message",
    ["hello", "thanks!", "how are you", "what's the weather like today?", "你好", "今天天气怎么样", ""],
)
def test_small_talk_is_declined(kb: FaqKnowledge, message: str) -> None:
    assert kb.answer(message) is None
    assert all(confidence < kb.threshold for _, confidence in kb.rank(message))


def test_top_level_list_and_default_threshold() -> None:
    kb = FaqKnowledge.from_data([{"question": "How do I reset my password?", "answer": "Use the link."}])
    assert kb.threshold == 0.35
    result = kb.answer("I forgot my password, how to reset it?")
    assert result is not None and result.answer == "Use the link."
    assert kb.answer("how are you") is None


def test_threshold_from_file_is_applied() -> None:
    data = {"threshold": 0.99, "entries": [{"question": "How do I reset my password?", "answer": "x"}]}
    assert FaqKnowledge.from_data(data).answer("password") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"entries": []}, "non-empty list"),
        ("just text", "non-empty list"),
        ({"entries": [{"question": "q"}]}, "entry 0: `answer`"),
        ({"entries": [{"question": "q", "answer": "a"}, "oops"]}, "entry 1: expected a mapping"),
        ({"entries": [{"question": "q", "answer": "  "}]}, "entry 0: `answer` must be a non-empty"),
        ({"entries": [{"question": "q", "answer": "a", "keyword": ["x"]}]}, "unknown key.*keyword"),
        ({"entries": [{"question": "q", "answer": "a", "keywords": "x"}]}, "`keywords` must be a list"),
        ({"entries": [{"question": "q", "answer": "a", "keywords": [True]}]}, "quote it"),
        ({"threshold": 2, "entries": [{"question": "q", "answer": "a"}]}, "threshold"),
        ({"entries": [{"question": "q", "answer": "a"}], "extra": 1}, "unknown key.*extra"),
    ],
)
def test_bad_shapes_name_source_and_entry(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        FaqKnowledge.from_data(data, source="kb/faq.yaml")
    assert "kb/faq.yaml" in str(info.value)


def test_numbers_in_yaml_become_text() -> None:
    kb = FaqKnowledge.from_data([{"question": "error 404", "answer": 404, "keywords": [404]}])
    assert kb.entries[0].answer == "404"


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries: [unclosed", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml.*invalid YAML"):
        FaqKnowledge.load(bad)
    with pytest.raises(ValueError, match=r"missing\.yaml"):
        FaqKnowledge.load(tmp_path / "missing.yaml")
