"""What a customer sees on a channel that cannot show everything a reply has."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.channels.degrade import degrade, image_links, numbered_choices, split_text
from engine.channels.types import Attachment, Capabilities, OutboundMessage
from engine.flow.steps_run import match_choice


def test_choices_without_buttons_become_a_numbered_list_and_a_number_picks_one_again() -> None:
    text = numbered_choices("Which order?", ["A-100", "B-200"])
    assert text == "Which order?\n\n1. A-100\n2. B-200"
    # The flow's ask reads a number back as the choice it stands for.
    assert match_choice("2", ("A-100", "B-200")) == "B-200"
    assert match_choice(" 1. ", ("A-100", "B-200")) == "A-100"
    assert match_choice("1、", ("是", "否")) == "是"
    assert match_choice("3", ("A-100", "B-200")) is None
    assert match_choice("order 2", ("A-100", "B-200")) is None
    # A button press is the choice it stands for, whatever its label says.
    assert match_choice("B-200 (blue)", ("A-100", "B-200"), pressed="B-200") == "B-200"


def test_images_without_image_support_become_links() -> None:
    assert image_links("Here it is:", ["https://shop.example/a.png"]) == "Here it is:\nhttps://shop.example/a.png"
    assert image_links("Nothing", []) == "Nothing"


def test_long_text_is_split_at_sentence_ends_first() -> None:
    text = "Your order shipped today. It arrives on Friday! Track it in your account."
    assert split_text(text, 30) == ["Your order shipped today.", "It arrives on Friday!", "Track it in your account."]
    assert split_text(text, 200) == [text]
    assert split_text(text, None) == [text]


def test_chinese_text_is_split_after_its_full_stops() -> None:
    assert split_text("您好。您的订单已发货！预计周五送达。", 8) == ["您好。", "您的订单已发货！", "预计周五送达。"]


def test_a_word_longer_than_the_limit_is_cut_and_nothing_is_lost() -> None:
    assert split_text("see https://example.com/a-very-long-path", 12) == [
        "see",
        "https://exam",
        "ple.com/a-ve",
        "ry-long-path",
    ]


def test_a_line_break_inside_a_part_is_kept_and_a_long_sentence_is_cut_at_a_space() -> None:
    assert split_text("First line.\nSecond line. And a third sentence here.", 25) == [
        "First line.\nSecond line.",
        "And a third sentence",
        "here.",
    ]


@given(st.text(alphabet=st.sampled_from("ab .!?。\n中"), max_size=300), st.integers(min_value=1, max_value=40))
def test_every_part_fits_and_the_words_survive(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    if len(text) > limit:
        assert all(0 < len(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_degrade_lists_choices_links_images_and_splits_for_the_channel() -> None:
    message = OutboundMessage(
        conversation_id="c",
        key="k",
        text="Pick one.",
        choices=("Yes", "No"),
        attachments=(Attachment("image", url="https://shop.example/p.png"),),
    )
    assert degrade(message, Capabilities()) == ["Pick one.\n\n1. Yes\n2. No\nhttps://shop.example/p.png"]
    assert degrade(message, Capabilities(choices=True, images=True)) == ["Pick one."]
    # A numbered list stays whole: "1. " is not the end of a sentence.
    assert degrade(message, Capabilities(max_text_length=14)) == [
        "Pick one.",
        "1. Yes\n2. No",
        "https://shop.e",
        "xample/p.png",
    ]
