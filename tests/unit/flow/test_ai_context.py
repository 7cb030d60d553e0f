"""Which earlier turns go to the vendor: the customer's goal survives small talk under `relevance`."""

from __future__ import annotations

import pytest

from engine.flow.ai_context import (
    Turn,
    ai_history,
    call_context,
    choose_context,
    estimate_tokens,
    goal_turn,
    select_context,
)
from engine.flow.events import CallAI
from engine.flow.model import ContextSpec

INTENT = "I want to return the blue jacket I bought last week, it is too small"
SMALL_TALK = [
    ("user", "How long does shipping to Canada usually take?"),
    ("assistant", "Shipping to Canada takes 5 to 7 business days."),
    ("user", "Is it going to rain in Berlin tomorrow?"),
    ("assistant", "I can't check the weather, sorry."),
    ("user", "What are your opening hours on Sunday?"),
    ("assistant", "Our shop is open 10am to 4pm on Sundays."),
    ("user", "Do you ship to Norway as well?"),
    ("assistant", "Yes, shipping to Norway takes about a week."),
    ("user", "Do you have a physical store in Paris?"),
    ("assistant", "We have one store in Paris, near the Louvre."),
    ("user", "Which payment methods do you accept?"),
    ("assistant", "We accept cards, PayPal and bank transfer."),
    ("user", "Is there a newsletter I can subscribe to?"),
    ("assistant", "Yes, at the bottom of our homepage."),
    ("user", "Nice weather today, isn't it?"),
    ("assistant", "It is lovely outside!"),
    ("user", "Can I pick up orders at the Paris store?"),
    ("assistant", "Yes, click and collect is available in Paris."),
    ("user", "Are gift cards available?"),
    ("assistant", "Gift cards from 10 to 200 euros are available."),
]

INTENT_ZH = "我想退货，上周买的蓝色外套太小了"
SMALL_TALK_ZH = [
    ("user", "发货一般要几天？"),
    ("assistant", "一般48小时内发货。"),
    ("user", "今天北京天气怎么样？"),
    ("assistant", "抱歉，我查不到天气。"),
    ("user", "你们周末营业吗？"),
    ("assistant", "周末上午十点到下午四点营业。"),
    ("user", "可以开发票吗？"),
    ("assistant", "可以，下单时填写抬头即可。"),
    ("user", "支持哪些支付方式？"),
    ("assistant", "支持支付宝、微信和银行卡。"),
    ("user", "有实体店吗？"),
    ("assistant", "上海有一家门店。"),
    ("user", "快递用的是哪家？"),
    ("assistant", "默认顺丰快递。"),
    ("user", "会员有折扣吗？"),
    ("assistant", "会员享九五折。"),
    ("user", "礼品卡怎么买？"),
    ("assistant", "在首页可以购买礼品卡。"),
    ("user", "今天好热啊"),
    ("assistant", "是啊，注意防暑。"),
]


def conversation(opening: list[tuple[str, str]], intent: str, small_talk: list[tuple[str, str]]) -> list[Turn]:
    return [Turn(role, text) for role, text in [*opening, ("user", intent), *small_talk]]


ENGLISH = conversation([("user", "Hi!"), ("assistant", "Hello! How can I help you today?")], INTENT, SMALL_TALK)
CHINESE = conversation([("user", "你好"), ("assistant", "您好！请问有什么可以帮您？")], INTENT_ZH, SMALL_TALK_ZH)


def texts(turns: tuple[Turn, ...]) -> list[str]:
    return [turn.text for turn in turns]


def in_history_order(selected: tuple[Turn, ...], history: list[Turn]) -> bool:
    positions = [next(i for i, turn in enumerate(history) if turn is chosen) for chosen in selected]
    return positions == sorted(positions)


# -- the issue: a goal stated early, twenty turns of small talk, a follow-up ---------


@pytest.mark.parametrize(
    ("history", "intent", "follow_up"),
    [
        (ENGLISH, INTENT, "How long does the return take?"),
        (ENGLISH, INTENT, "Will the refund for it go back to my card?"),
        (CHINESE, INTENT_ZH, "退货要多久？"),
        (CHINESE, INTENT_ZH, "那个要多久才能处理好？"),
    ],
    ids=["en-return", "en-refund-for-it", "zh-return", "zh-that"],
)
def test_relevance_keeps_the_stated_goal_and_the_latest_turn(history: list[Turn], intent: str, follow_up: str) -> None:
    assert len(history) == 23

    selected = select_context(history, follow_up, ContextSpec("relevance", max_turns=6, max_tokens=2000))

    assert intent in texts(selected)
    assert history[-1] in selected
    assert len(selected) == 6
    assert in_history_order(selected, history)


@pytest.mark.parametrize(
    ("history", "intent", "follow_up"),
    [(ENGLISH, INTENT, "How long does the return take?"), (CHINESE, INTENT_ZH, "退货要多久？")],
    ids=["en", "zh"],
)
def test_recent_sends_only_the_latest_turns(history: list[Turn], intent: str, follow_up: str) -> None:
    selected = select_context(history, follow_up, ContextSpec("recent", max_turns=6, max_tokens=2000))

    assert intent not in texts(selected)
    assert selected == tuple(history[-6:])


@pytest.mark.parametrize(
    ("opening", "intent", "small_talk", "follow_up"),
    [
        (
            [("user", "Good morning!"), ("assistant", "Good morning! How can I help?")],
            INTENT,
            SMALL_TALK,
            "How long will that take?",
        ),
        (
            [("user", "Hello, how are you?"), ("assistant", "Fine, thanks! How can I help?")],
            INTENT,
            SMALL_TALK,
            "How long will that take?",
        ),
        (
            [("user", "你好，在吗？"), ("assistant", "在的，请问有什么可以帮您？")],
            INTENT_ZH,
            SMALL_TALK_ZH,
            "那个要多久才能处理好？",
        ),
    ],
    ids=["good-morning", "hello-how-are-you", "zh-hello-are-you-there"],
)
def test_a_greeting_before_the_goal_does_not_take_its_place(
    opening: list[tuple[str, str]], intent: str, small_talk: list[tuple[str, str]], follow_up: str
) -> None:
    # Customers often open with a greeting of two words ("Good morning!", "你好，在吗？" = "hello,
    # are you there?"). The goal is the request that follows, and it must survive the small talk.
    history = conversation(opening, intent, small_talk)

    assert goal_turn(history) == 2
    selected = select_context(history, follow_up, ContextSpec("relevance", max_turns=6, max_tokens=2000))
    assert intent in texts(selected)


# -- goal_turn -----------------------------------------------------------------------


def test_goal_turn_is_the_first_customer_message_that_says_something() -> None:
    history = [
        Turn("user", "hi"),
        Turn("assistant", "I want to help you with your order today"),
        Turn("user", "My parcel never arrived"),
        Turn("user", "It was order 4711 with two shirts"),
    ]

    assert goal_turn(history) == 2
    assert goal_turn(CHINESE) == 2
    assert goal_turn([Turn("user", "hi"), Turn("assistant", "Hello, how can I help?")]) is None
    assert goal_turn([]) is None


# -- budgets and order ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["recent", "relevance"])
def test_turns_come_back_oldest_first(strategy: str) -> None:
    selected = select_context(ENGLISH, "Can I return it at the Paris store?", ContextSpec(strategy, 8, 2000))

    assert len(selected) == 8
    assert in_history_order(selected, ENGLISH)


@pytest.mark.parametrize("strategy", ["recent", "relevance"])
@pytest.mark.parametrize("max_turns", [1, 3, 10])
def test_max_turns_is_respected(strategy: str, max_turns: int) -> None:
    selected = select_context(ENGLISH, "How long does the return take?", ContextSpec(strategy, max_turns, 10_000))

    assert len(selected) == max_turns


@pytest.mark.parametrize("strategy", ["recent", "relevance"])
@pytest.mark.parametrize("history", [ENGLISH, CHINESE], ids=["en", "zh"])
@pytest.mark.parametrize("max_tokens", [15, 40, 90])
def test_max_tokens_is_respected(strategy: str, history: list[Turn], max_tokens: int) -> None:
    selected = select_context(
        history, "How long does the return take? 退货要多久？", ContextSpec(strategy, 50, max_tokens)
    )

    assert selected  # a budget this size holds at least one short turn
    assert sum(estimate_tokens(turn.text) for turn in selected) <= max_tokens
    assert in_history_order(selected, history)


def test_a_long_turn_that_does_not_fit_leaves_room_for_shorter_ones() -> None:
    history = [Turn("user", "Where is my order?"), Turn("assistant", "word " * 300), Turn("user", "Hello?")]

    selected = select_context(history, "Anyone there?", ContextSpec("recent", 3, 40))

    assert texts(selected) == ["Where is my order?", "Hello?"]


@pytest.mark.parametrize("strategy", ["recent", "relevance"])
def test_max_turns_zero_sends_nothing(strategy: str) -> None:
    assert select_context(ENGLISH, "How long does the return take?", ContextSpec(strategy, 0, 2000)) == ()


def test_empty_history_sends_nothing() -> None:
    assert select_context([], "Hello", ContextSpec("relevance", 6, 2000)) == ()


def test_a_relevant_question_brings_its_answer_when_there_is_room() -> None:
    history = [
        Turn("user", "I want to change the delivery address of order 1234"),
        Turn("assistant", "Sure, what is the new address?"),
        Turn("user", "Do you accept PayPal for payment?"),
        Turn("assistant", "Yes, we do, at checkout."),  # shares no word with the message below
        Turn("user", "What are your opening hours on Sunday?"),
        Turn("assistant", "10am to 4pm on Sundays."),
        Turn("user", "Nice weather today"),
        Turn("assistant", "It is lovely outside!"),
        Turn("user", "Do you have a store in Paris?"),
        Turn("assistant", "One, near the Louvre."),
        Turn("user", "Are gift cards available?"),
        Turn("assistant", "From 10 to 200 euros."),
    ]

    selected = texts(
        select_context(history, "Is PayPal available in the mobile app too?", ContextSpec("relevance", 5, 2000))
    )

    assert "Do you accept PayPal for payment?" in selected
    assert "Yes, we do, at checkout." in selected
    assert "10am to 4pm on Sundays." not in selected


# -- estimate_tokens -----------------------------------------------------------------


def test_estimate_tokens_counts_each_cjk_character() -> None:
    framing = estimate_tokens("")

    assert estimate_tokens("退货要多久") - framing == 5
    assert estimate_tokens("退货" * 100) - framing == 200
    assert estimate_tokens("返品したい") - framing == 5  # kana and kanji too


def test_estimate_tokens_counts_latin_words_generously() -> None:
    framing = estimate_tokens("")

    assert estimate_tokens("where is my order") - framing == 6  # 4 words * 4/3, rounded up
    assert estimate_tokens("hello") - framing == 2
    assert estimate_tokens("order 4711 退货") - framing == 3 + 2  # two words, two characters
    assert framing > 0  # each turn costs something for its framing


# -- chosen by the workflow or by the activity: the vendor gets the same turns ------------

TRANSCRIPT = [
    {"role": "user", "text": "Hi!"},
    {"role": "bot", "text": "Hello! How can I help you today?"},
    {"role": "user", "text": INTENT},
    {"role": "bot", "text": "Sure. " + "I can help with returns. " * 40},  # long: over a small budget
    {"role": "system", "text": "ann joined"},  # a note, never a turn
    {"role": "agent", "text": "Hi, Ann here. Which size do you need?"},
    {"role": "user", "text": "yes", "ai_text": "yes [redacted]"},
    *({"role": "user" if i % 2 else "bot", "text": SMALL_TALK[i % len(SMALL_TALK)][1]} for i in range(12)),
    {"role": "user", "text": "How long does the return take?"},
]


def ai_call(history: tuple[dict[str, str], ...], context: tuple[dict[str, str], ...], text: str) -> CallAI:
    return CallAI("ai-1", "answer", "f", "r", "c", text, None, history, context=context)


@pytest.mark.parametrize("strategy", ["recent", "relevance"])
@pytest.mark.parametrize(("max_turns", "max_tokens"), [(12, 2000), (4, 2000), (30, 60), (0, 2000)])
@pytest.mark.parametrize("message", ["How long does the return take?", "yes", "Hi!"])
def test_turns_chosen_in_the_workflow_are_those_the_activity_chose_from_the_transcript(
    strategy: str, max_turns: int, max_tokens: int, message: str
) -> None:
    spec = ContextSpec(strategy, max_turns, max_tokens)
    transcript = [*TRANSCRIPT[:-1], {"role": "user", "text": message}]  # the transcript ends with the message
    # What a conversation on the older interpreter sends: the transcript, as the interpreter rendered it.
    old = ai_call(ai_history(transcript), (), message)
    new = ai_call((), choose_context(transcript, message, spec), message)
    assert call_context(new, spec) == call_context(old, spec)
    assert len(new.context) <= max_turns
    assert all(turn["role"] in {"user", "assistant"} for turn in new.context)


def test_chosen_turns_are_sent_as_they_are() -> None:
    # The customer said "yes" before and says it again: the earlier "yes" is a turn of its own,
    # not the message being answered, and is not dropped a second time.
    context = ({"role": "assistant", "text": "Is that the blue one?"}, {"role": "user", "text": "yes"})
    assert call_context(ai_call((), context, "yes"), ContextSpec("recent", 12, 2000)) == (
        Turn("assistant", "Is that the blue one?"),
        Turn("user", "yes"),
    )


def test_a_turn_redacted_for_ai_is_sent_as_redacted() -> None:
    context = choose_context(TRANSCRIPT, "How long does the return take?", ContextSpec("recent", 30, 10_000))
    assert {"role": "user", "text": "yes [redacted]"} in context
    assert all(turn["text"] != "yes" for turn in context)
    assert {"role": "assistant", "text": "Hi, Ann here. Which size do you need?"} in context  # an agent's turn
    assert all(turn["text"] != "ann joined" for turn in context)  # a system note is no turn
