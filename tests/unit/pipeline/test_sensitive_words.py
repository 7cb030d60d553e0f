"""The ``sensitive_words`` processor: what a customer's message looks like after it, and what the flow sees."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.pipeline.registry import build_processor
from engine.pipeline.sensitive_words import SensitiveWords
from engine.pipeline.types import Block, Message, PipelineContext

REPO = Path(__file__).resolve().parents[3]
WORDS = ["idiot", "bad", "ass", "hell", "penis", "asshole", "笨蛋", "他妈的"]


def context(word_lists: Mapping[str, Mapping[str, Any]] | None = None, *, now: float = 1000.0) -> PipelineContext:
    lists = {"default": {"words": WORDS}} if word_lists is None else word_lists
    return PipelineContext(flow="shop", conversation_id="c1", direction="in", key="c1", now=now, word_lists=lists)


def message(text: str, **fields: Any) -> Message:
    return Message(id="m1", text=text, channel="webchat", **fields)


def run(text: str, config: Mapping[str, Any] | None = None, **kw: Any) -> Message | Block:
    return SensitiveWords(config or {"lists": ["default"]}).process(message(text), context(**kw))


def text_of(result: Message | Block) -> str:
    assert isinstance(result, Message), result
    return result.text


def masked(text: str, words: Sequence[str] = WORDS, **config: Any) -> str:
    result = SensitiveWords({"words": list(words), **config}).process(message(text), context({}))
    assert isinstance(result, Message)
    return result.text


# -- hits and masking ---------------------------------------------------------------------------------


def test_an_english_word_is_masked_and_counted() -> None:
    result = run("You are an idiot!")
    assert isinstance(result, Message)
    assert result.text == "You are an *****!"
    assert result.flags == {"sensitive_words": 1}


def test_a_chinese_word_is_masked_inside_a_sentence() -> None:
    assert masked("你这个笨蛋，快走。") == "你这个**，快走。"


@pytest.mark.parametrize("text", ["BAD", "BaD", "ＢＡＤ", "ｂａｄ", "Ｂad"])
def test_case_and_width_do_not_matter(text: str) -> None:
    assert masked(f"so {text}.") == "so ***."


def test_mask_keeps_everything_else_exactly() -> None:
    text = "Hi!\n  你好，笨蛋 🙂  that's BAD\tok\n\n"
    assert masked(text) == "Hi!\n  你好，** 🙂  that's ***\tok\n\n"


def test_a_custom_mask_character() -> None:
    assert masked("an idiot", mask_char="#") == "an #####"


def test_no_hit_leaves_the_message_alone_without_flags() -> None:
    original = message("Where is my order 12345?", flags={"vip": True})
    result = SensitiveWords({"lists": ["default"]}).process(original, context())
    assert result == original
    assert isinstance(result, Message)
    assert result.flags == {"vip": True}


def test_text_for_the_ai_is_masked_too() -> None:
    original = message("idiot, mail me at a@b.c", ai_text="idiot, mail me at [email]")
    result = SensitiveWords({"words": ["idiot"]}).process(original, context({}))
    assert isinstance(result, Message)
    assert (result.text, result.ai_text) == ("*****, mail me at a@b.c", "*****, mail me at [email]")


def test_overlapping_words_mask_their_union_and_each_counts() -> None:
    result = SensitiveWords({"words": ["bad", "bad word", "word play"]}).process(
        message("a bad word play here"), context({})
    )
    assert isinstance(result, Message)
    assert result.text == "a ************* here"
    assert result.flags["sensitive_words"] == 3


# -- traditional / simplified --------------------------------------------------------------------------


def test_traditional_characters_hit_simplified_words_when_enabled() -> None:
    assert masked("你這個笨蛋，他媽的！", traditional=True) == "你這個**，***！"


def test_traditional_characters_do_not_hit_when_disabled() -> None:
    assert masked("他媽的！") == "他媽的！"
    assert masked("他妈的！") == "***！"


def test_a_traditional_word_in_the_list_hits_simplified_text_when_enabled() -> None:
    assert masked("真是脑残", words=["腦殘"], traditional=True) == "真是**"
    assert masked("真是脑残", words=["腦殘"]) == "真是脑残"


# -- evasion -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("you i d i o t!", "you *********!"),
        ("you i.d.i.o.t!", "you *********!"),
        ("you i_d-i*o*t!", "you *********!"),
        ("you i\u200bd\u200bi\u200bo\u200bt!", "you *********!"),
        ("you id.iot!", "you ******!"),
        ("you i\u0336d\u0336i\u0336o\u0336t\u0336!", "you **********!"),  # struck through
        ("you I  D  I  O  T", "you *************"),
        ("a ｉ ｄ ｉ ｏ ｔ", "a *********"),
        ("你这个笨 蛋", "你这个***"),
        ("你这个笨，蛋！", "你这个***！"),
        ("你这个笨\u200b蛋", "你这个***"),
        ("你这个笨*蛋", "你这个***"),
        ("他 妈 的", "*****"),
    ],
)
def test_separators_between_characters_do_not_hide_a_word(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "first class service",
        "please pass the salt",
        "we assess each case",
        "a glass hole in the window",  # "asshole" across two words
        "the pen is on the desk",  # "penis" across two words
        "he'll call you back",  # "hell" across an apostrophe
        "hello from the shell",
        "badminton and baddies",
        "cl\u200bass",  # a zero-width space is no word boundary
    ],
)
def test_english_words_inside_longer_words_do_not_hit(text: str) -> None:
    assert masked(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ass", "***"),
        ("what an ASS!", "what an ***!"),
        ("(ass)", "(***)"),
        ("pass the ass", "pass the ***"),
        ("a s s", "*****"),
        ("go to hell.", "go to ****."),
        ("hell's bells", "****'s bells"),
        ("真的很bad的", "真的很***的"),  # Chinese characters are no letters of an English word
    ],
)
def test_english_words_hit_at_word_boundaries(text: str, expected: str) -> None:
    assert masked(text) == expected


def test_a_listed_phrase_hits_with_or_without_its_space() -> None:
    assert masked("such a bad word", words=["bad word"]) == "such a ********"
    assert masked("such a badword", words=["bad word"]) == "such a *******"


# -- block and flag ------------------------------------------------------------------------------------


def test_block_counts_the_words_without_naming_them() -> None:
    result = run("idiot, you idiot", {"lists": ["default"], "action": "block", "reply": "Please stay polite."})
    assert isinstance(result, Block)
    assert result.reply == "Please stay polite."
    assert "2" in result.reason
    assert "idiot" not in result.reason.lower()


def test_block_without_reply_sends_nothing() -> None:
    result = run("idiot", {"action": "block"})
    assert isinstance(result, Block)
    assert result.reply is None


def test_flag_lets_the_text_through_and_flags_it() -> None:
    original = message("idiot! 笨蛋", flags={"vip": True})
    result = SensitiveWords({"lists": ["default"], "action": "flag"}).process(original, context())
    assert isinstance(result, Message)
    assert result.text == "idiot! 笨蛋"
    assert result.flags == {"vip": True, "sensitive_words": 2, "profanity": True}
    assert original.flags == {"vip": True}


def test_flag_with_its_own_name() -> None:
    result = run("idiot", {"action": "flag", "flag": "rude"})
    assert isinstance(result, Message)
    assert result.flags == {"sensitive_words": 1, "rude": True}


# -- word lists ----------------------------------------------------------------------------------------


def test_lists_from_files_and_settings_words_and_stage_words(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("\ufeff# a comment\n\nalpha\n  beta gamma  \n", encoding="utf-8")
    lists = {"mine": {"files": [str(words)], "words": ["delta"]}}
    processor = SensitiveWords({"lists": ["mine"], "words": ["epsilon"]})
    result = processor.process(message("alpha beta gamma delta epsilon comment"), context(lists))
    assert isinstance(result, Message)
    assert result.text == "***** ********** ***** ******* comment"


def test_an_edited_list_file_is_picked_up(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("alpha\n", encoding="utf-8")
    lists = {"mine": {"files": [str(words)]}}
    processor = SensitiveWords({"lists": ["mine"]})
    assert text_of(processor.process(message("alpha beta"), context(lists, now=1000.0))) == "***** beta"
    words.write_text("beta\nomega\n", encoding="utf-8")
    # checked at most once a second: the edit is live at the next check
    assert text_of(processor.process(message("alpha beta"), context(lists, now=1000.5))) == "***** beta"
    assert text_of(processor.process(message("alpha beta"), context(lists, now=1001.5))) == "alpha ****"


def test_a_list_file_that_cannot_be_read_later_keeps_the_words(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("alpha\n", encoding="utf-8")
    lists = {"mine": {"files": [str(words)]}}
    processor = SensitiveWords({"lists": ["mine"]})
    processor.process(message("alpha"), context(lists, now=1000.0))
    words.unlink()
    with caplog.at_level(logging.WARNING):
        result = processor.process(message("alpha"), context(lists, now=1002.0))
    assert isinstance(result, Message)
    assert result.text == "*****"
    assert str(words) in caplog.text


def test_an_unknown_list_name_is_a_clear_error() -> None:
    processor = SensitiveWords({"lists": ["rude"]})
    with pytest.raises(ValueError, match=r"unknown word list 'rude'.*defines: default, zh"):
        processor.process(message("hi"), context({"default": {"words": ["x"]}, "zh": {"words": ["y"]}}))


def test_a_missing_list_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    processor = SensitiveWords({"lists": ["mine"]})
    with pytest.raises(ValueError, match=r"word list 'mine': cannot read .*nope\.txt"):
        processor.process(message("hi"), context({"mine": {"files": [str(missing)]}}))


def test_the_default_list_is_used_when_none_is_named() -> None:
    assert text_of(run("idiot", {"action": "mask"})) == "*****"


def test_the_shipped_example_lists() -> None:
    files = [str(REPO / "flows" / "words" / "default-en.txt"), str(REPO / "flows" / "words" / "default-zh.txt")]
    processor = build_processor("sensitive_words", {"lists": ["default"], "on_error": "pass"})
    ctx = context({"default": {"files": files}})
    result = processor.process(message("You I D I O T, 你这个笨蛋! Hello from the shell."), ctx)
    assert isinstance(result, Message)
    assert result.text == "You *********, 你这个**! Hello from the shell."


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"action": "hide"}, "action must be one of mask, block, flag"),
        ({"mask_char": "**"}, "mask_char must be one character"),
        ({"lists": "default"}, "lists must be a list"),
        ({"lists": []}, "nothing to look for"),
        ({"flag": "not a name"}, "flag must be a name"),
        ({"traditional": "yes"}, "traditional must be true or false"),
        ({"list": ["default"]}, "unknown key"),
    ],
)
def test_bad_configs_are_rejected(config: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SensitiveWords(config)
