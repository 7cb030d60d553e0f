"""Tokens, offline intent classification and BM25 ranking, in Chinese and English."""

from __future__ import annotations

from engine.flow.textmatch import BM25Index, KeywordClassifier, term_weight, tokenize


def test_tokenize_english() -> None:
    assert tokenize("Where are my ORDERS?") == ["where", "order"]
    assert tokenize("Ｒｅｆｕｎｄ １２３４５６") == ["refund", "123456"]  # full-width -> ASCII
    assert tokenize("status class policies boxes") == ["status", "class", "policy", "box"]
    assert tokenize("how are you") == ["how"]
    assert tokenize("to be or not") == ["not"]
    assert tokenize("it is") == ["it", "is"]  # only stopwords: keep them
    assert tokenize("") == []


def test_tokenize_chinese_unigrams_and_bigrams() -> None:
    assert tokenize("退款") == ["退", "退款", "款"]
    tokens = tokenize("我要退款")
    assert {"退", "款", "退款"} <= set(tokens)
    assert "我" not in tokens  # particles and pronouns are dropped
    assert tokenize("退款refund") == ["退", "退款", "款", "refund"]
    assert "我" in tokenize("我要退款", keep_stopwords=True)


def test_term_weights() -> None:
    assert term_weight("refund") == 1.0
    assert term_weight("退款") == 1.0
    assert term_weight("退") == 0.5
    assert term_weight("how") < 0.5


INTENTS = {
    "greet": ["hi", "hello", "how are you", "你好"],
    "refund": ["I want a refund", "money back", "退款"],
    "track": ["where is my order", "track my package", "快递到哪了"],
    "buy": ["how do I order", "buy something"],
}


def test_classify_english() -> None:
    clf = KeywordClassifier(INTENTS)
    intent, score = clf.classify("Hi, I would like a refund for my shoes please")
    assert intent in {"greet", "refund"} and score > 0.9
    assert clf.classify("Could I get my money back?") == ("refund", 1.0)
    assert clf.classify("where is my order??")[0] == "track"
    assert clf.classify("how do I order a gift card")[0] == "buy"
    assert clf.classify("How are you today?")[0] == "greet"


def test_classify_chinese() -> None:
    clf = KeywordClassifier(INTENTS)
    assert clf.classify("我要退款") == ("refund", 1.0)
    assert clf.classify("我的快递到哪了？")[0] == "track"
    _, partial = clf.classify("退货")  # shares one character with 退款
    assert 0 < partial < 0.5


def test_classify_unrelated_text_scores_low() -> None:
    clf = KeywordClassifier(INTENTS)
    assert clf.classify("the weather is lovely") == (None, 0.0)
    assert clf.classify("") == (None, 0.0)
    _, score = clf.classify("what time is it")
    assert score < 0.35


def test_classify_ties_follow_intent_order() -> None:
    assert KeywordClassifier({"a": ["refund"], "b": ["refund"]}).classify("refund") == ("a", 1.0)
    assert KeywordClassifier({"b": ["refund"], "a": ["refund"]}).classify("refund") == ("b", 1.0)


def test_classify_is_deterministic() -> None:
    results = {KeywordClassifier(INTENTS).classify("track my refund order") for _ in range(5)}
    assert len(results) == 1


def test_bm25_ranks_relevant_documents_first() -> None:
    docs = [
        "Shipping takes three to five days",
        "Refunds are paid back within 14 days",
        "Our shop opens at nine",
        "退款将在14天内退回",
    ]
    index = BM25Index(docs)
    assert len(index) == 4
    assert index.search("how long until my refund is paid", k=2)[0][0] == 1
    assert index.search("我的退款", k=1)[0][0] == 3
    assert index.search("when does the shop open", k=5)[0][0] == 2
    assert index.search("quantum physics", k=3) == []
    results = index.search("days", k=10)
    assert [i for i, _ in results] == [0, 1]  # only matching docs; the shorter one first
    assert all(score > 0 for _, score in results)


def test_bm25_scores_are_bounded_by_self_score() -> None:
    index = BM25Index(["return an item", "opening hours", "return policy for items"])
    assert index.score("return item", 0) <= index.self_score(0)
    assert abs(index.score("return an item", 0) - index.self_score(0)) < 1e-9


def test_bm25_empty_index() -> None:
    assert BM25Index([]).search("anything", k=3) == []
