"""``pii_redact``: what is redacted, what is left alone, and where the result goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.pipeline.pii import PiiRedact
from engine.pipeline.types import Message, PipelineContext

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
CONTEXT = PipelineContext(flow="shop", conversation_id="c1", direction="in", key="contact-1", now=NOW)


def run(text: str, **config: object) -> Message:
    result = PiiRedact(config).process(Message(id="m1", text=text, channel="web"), CONTEXT)
    assert isinstance(result, Message)
    return result


def redacted(text: str, **config: object) -> str:
    return run(text, **config).text


# --- e-mail -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe+shop@example.co.uk.", "write to [email]."),
        ("Mail: Li_Lei-99@mail.example-shop.com, thanks", "Mail: [email], thanks"),
        ("'alice@example.org' or ...bob@example.net", "'[email]' or ...[email]"),
        ("我的邮箱是zhang.san@qq.com谢谢", "我的邮箱是[email]谢谢"),
    ],
)
def test_email_addresses_become_a_placeholder(text: str, expected: str) -> None:
    assert redacted(text) == expected


@pytest.mark.parametrize(
    "text",
    ["root@localhost", "follow @flowdesk on social media", "a@b.c", "price: 3 @ 5 EUR", "x.@example.com.."],
)
def test_things_that_are_not_email_addresses_stay(text: str) -> None:
    assert run(text).text.count("[email]") == 0


# --- cards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 exp 12/28", "card [card] exp 12/28"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("card 5500005555555559, cvv later", "card [card], cvv later"),
        ("amex 3782 822463 10005", "amex [card]"),
        ("银联卡6212345678901234569可以吗", "银联卡[card]可以吗"),
    ],
)
def test_luhn_valid_card_numbers_are_redacted(text: str, expected: str) -> None:
    assert redacted(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 2026112700001233 has not arrived",  # 16 digits, Luhn fails
        "card 4111 1111 1111 1112",  # one digit off
        "4111 1111 1111 1111 1111 1",  # a longer grouped number, not a card inside it
    ],
)
def test_numbers_failing_luhn_or_too_long_are_not_cards(text: str) -> None:
    assert run(text).text == text


# --- Chinese resident ID ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证11010519491231002X谢谢", "身份证[cn_id]谢谢"),
        ("身份证号：11010519491231002x", "身份证号：[cn_id]"),
        ("ID 440304198506121230.", "ID [cn_id]."),
        ("ID 110105 19491231 002X", "ID [cn_id]"),
    ],
)
def test_chinese_ids_with_a_valid_check_character_are_redacted(text: str, expected: str) -> None:
    assert redacted(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "身份证110105194912310021",  # check character should be X
        "身份证11010519900230001X",  # right check character, but February 30th
        "身份证11010520300101001X",  # right check character, born in 2030
    ],
)
def test_ids_with_a_bad_checksum_or_birth_date_stay(text: str) -> None:
    message = run(text)
    assert message.text == text
    assert "pii" not in message.flags


# --- IBAN -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "ES91 2100 0418 4502 0005 1332",
        "IT60X0542811101000000123456",
        "CH9300762011623852957",
        "BE68 5390 0754 7034",
        "de89370400440532013000",
    ],
)
def test_ibans_are_redacted(iban: str) -> None:
    assert redacted(f"IBAN: {iban}, thanks") == "IBAN: [iban], thanks"


def test_several_ibans_in_a_row_are_each_found() -> None:
    text = "ES9121000418450200051332 IT60X0542811101000000123456 BE68 5390 0754 7034 also"
    assert redacted(text) == "[iban] [iban] [iban] also"


@pytest.mark.parametrize(
    "text",
    [
        "IBAN DE89370400440532013001",  # check digits do not add up
        "IBAN DE863704004405320130",  # mod 97 is right, but a German IBAN has 22 characters
        "IBAN XX383704004405320130000",  # mod 97 is right, no such country
    ],
)
def test_ibans_with_a_bad_checksum_or_length_stay(text: str) -> None:
    assert "[iban]" not in redacted(text)


# --- phone numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "+49 30 1234567",
        "+1 (415) 555-2671",
        "+44 (0)20 7946 0958",
        "0044 20 7946 0958",
        "+86 138 0013 8000",
        "+86-138-0013-8000",
        "+8613800138000",
        "13800138000",
        "138 0013 8000",
        "415-555-2671",
        "(415) 555-2671",
        "1-800-555-0199",
        "030 1234567",
        "(030) 1234567",
        "010-12345678",
        "01 23 45 67 89",
    ],
)
def test_phone_numbers_are_redacted(phone: str) -> None:
    assert redacted(f"call me on {phone}, thanks") == "call me on [phone], thanks"


@pytest.mark.parametrize(
    "text",
    [
        "order 123456",
        "order 87654321 is late",
        "order 123456789012 is late",
        "订单号20261127001",
        "delivered on 2026-11-27 at 10:30",
        "delivered on 27.11.2026",
        "delivered 05-11-2026 10 items",
        "it costs $1,234.56 or ¥1299.00",
        "rated +12345 times",
        "at 2026-11-27T10:30:00+08:00",
        "call 0012345678",
    ],
)
def test_order_numbers_dates_times_and_prices_are_not_phones(text: str) -> None:
    assert redacted(text) == text


def test_chinese_mobile_inside_chinese_text() -> None:
    message = run("我的手机是13800138000谢谢")
    assert message.text == "我的手机是[phone]谢谢"
    assert message.flags["pii"] == ["phone"]


def test_full_width_digits_are_read_as_digits() -> None:
    assert redacted("手机：１３８００１３８０００，邮箱ａｂｃ＠ｑｑ．ｃｏｍ") == "手机：[phone]，邮箱[email]"


def test_a_phone_number_stops_before_a_following_date() -> None:
    assert redacted("+49 30 1234567 2026-11-27") == "[phone] 2026-11-27"


def test_card_and_iban_digits_are_not_read_again_as_phone_numbers() -> None:
    message = run("card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00")
    assert message.text == "card [card], iban [iban]"
    assert message.flags["pii"] == ["card", "iban"]


# --- several kinds, scope, kinds filter -------------------------------------------------


MIXED = (
    "IBAN: DE89 3704 0044 0532 0130 00, phone +49 30 1234567, mail a.b@example.de, "
    "card 4111 1111 1111 1111, ID 11010519491231002X, 手机13800138000，订单 123456"
)


def test_mixed_text_keeps_everything_between_the_items() -> None:
    message = run(MIXED)
    assert message.text == (
        "IBAN: [iban], phone [phone], mail [email], card [card], ID [cn_id], 手机[phone]，订单 123456"
    )
    assert message.flags["pii"] == ["card", "cn_id", "email", "iban", "phone"]
    assert message.ai_text is None


def test_scope_ai_leaves_the_text_and_redacts_what_ai_gets() -> None:
    message = run("mail a.b@example.de or call 13800138000", scope="ai")
    assert message.text == "mail a.b@example.de or call 13800138000"
    assert message.ai_text == "mail [email] or call [phone]"
    assert message.flags["pii"] == ["email", "phone"]


def test_scope_storage_also_redacts_an_ai_text_set_earlier() -> None:
    original = Message(id="m1", text="call 13800138000", channel="web", ai_text="user says: call 13800138000")
    result = PiiRedact({"scope": "storage"}).process(original, CONTEXT)
    assert isinstance(result, Message)
    assert (result.text, result.ai_text) == ("call [phone]", "user says: call [phone]")


def test_kinds_limits_what_is_redacted() -> None:
    message = run(MIXED, kinds=["email", "card"])
    assert "[email]" in message.text and "[card]" in message.text
    assert "+49 30 1234567" in message.text
    assert "DE89 3704 0044 0532 0130 00" in message.text
    assert "11010519491231002X" in message.text
    assert message.flags["pii"] == ["card", "email"]


def test_a_message_without_personal_data_is_returned_unchanged() -> None:
    original = Message(id="m1", text="Where is my order 123456?", channel="web", flags={"lang": "en"})
    assert PiiRedact({}).process(original, CONTEXT) is original
    assert original.flags == {"lang": "en"}


def test_pii_flag_merges_with_an_earlier_stage() -> None:
    first = PiiRedact({"kinds": ["email"], "scope": "ai"})
    second = PiiRedact({"kinds": ["phone"]})
    message = Message(id="m1", text="a@example.com 13800138000", channel="web")
    once = first.process(message, CONTEXT)
    assert isinstance(once, Message)
    twice = second.process(once, CONTEXT)
    assert isinstance(twice, Message)
    assert twice.flags["pii"] == ["email", "phone"]
    assert twice.text == "a@example.com [phone]"
    assert twice.ai_text == "[email] [phone]"


@pytest.mark.parametrize(
    ("config", "error", "says"),
    [
        ({"kinds": ["email", "passport"]}, ValueError, "passport"),
        ({"kinds": []}, ValueError, "at least one"),
        ({"kinds": "email"}, TypeError, "list"),
        ({"scope": "log"}, ValueError, "'storage'"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(
    config: dict[str, object], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        PiiRedact(config)
