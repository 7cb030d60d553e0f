"""``pii_redact``: replace personal data in a message with typed placeholders.

Config:

- ``kinds``: what to look for, any of ``email``, ``phone``, ``card``, ``cn_id``,
  ``iban`` (default: all five). Each found item becomes ``[email]``, ``[phone]``,
  ``[card]``, ``[cn_id]`` or ``[iban]``.
- ``scope``: ``storage`` (default) replaces ``message.text`` itself, so the log,
  the flow and AI providers all see the placeholders; ``ai`` leaves ``text`` as
  it is and puts the redacted text in ``message.ai_text``, which is what AI
  providers get. With ``storage`` an ``ai_text`` set by an earlier stage is
  redacted too.

When something is found, ``message.flags["pii"]`` is the sorted list of the kinds
found (``["email", "phone"]``), merged with what an earlier ``pii_redact`` stage
found; flows read it as ``message.flags.pii``. Nothing found: the message is
returned unchanged and the flag is not set.

What counts (numbers are checked, not just shaped, so order numbers survive):

- ``email``: a dot-atom local part of ASCII letters, digits and ``_ % + -``, ``@``,
  a domain of dot-separated labels ending in a top-level label of two or more
  characters starting with a letter. Quoted local parts, IP-literal domains,
  dotless hosts (``root@localhost``) and Unicode (IDN) domains are not matched.
- ``iban``: country code, two check digits and the account part, compact or in
  space-separated groups of four, exactly as long as the IBAN registry says for
  that country (:data:`IBAN_LENGTHS`) and with ``mod 97 == 1``.
- ``cn_id``: an 18-character Chinese resident ID (17 digits and a digit or X,
  optionally grouped 6-8-4) whose ISO 7064 MOD 11-2 check character is right and
  whose positions 7-14 are a real birth date from 1900 up to today.
- ``card``: 13-19 digits not starting with 0, contiguous or in groups of four
  (the last group shorter) or 4-6-5/4-6-4 (Amex, Diners) with one kind of
  separator (space or dash), passing the Luhn check. One random number in ten
  passes Luhn, so a 13-19 digit order number can still be taken for a card.
- ``phone`` (looked for last, so digits already taken as IBAN, ID or card are
  never read again), in this order:

  1. international: ``+`` and 8-15 digits (E.164's ceiling) in groups separated by
     one space, dash or dot, an area code in parentheses allowed
     (``+1 (415) 555-2671``, ``+44 (0)20 7946 0958``, ``+8613800138000``). A
     run that goes on past 15 digits (``+49 30 1234567 2026-11-27``) is cut after
     the last space-separated group that fits; within 15 digits a short number
     after a space is taken as part of it (there is no per-country length
     table). ``00`` instead of ``+`` counts only with separators
     (``0044 20 7946 0958``): a contiguous ``0044…`` is as likely an order number.
  2. Chinese mobile: 11 digits ``1[3-9]…``, contiguous or 3-4-4 grouped. An
     11-digit number starting 13-19 cannot be told from a mobile number.
  3. North American: ``415-555-2671``, ``415.555.2671``, ``(415) 555-2671``,
     optionally after ``1-``; area code and exchange start with 2-9.
  4. national with a trunk 0: ``030 1234567``, ``(030) 1234567``,
     ``010-12345678``, ``01 23 45 67 89``: a 0 and 1-5 more digits, then a space,
     dash or closing parenthesis, and 9-12 digits in all; a date-shaped
     ``05-11-2026 …`` is not one.

  Not phones: a bare run of digits other than a Chinese mobile (order numbers),
  dates (``2026-11-27``, ``27.11.2026``), times, prices and amounts — none have
  the ``+``/trunk-0/3-3-4 shapes above. Spanish-style 9-digit national numbers
  without a trunk 0 (``912 345 678``) are not matched for the same reason.

Digits and letters are ASCII (``re.ASCII``), so data glued to Chinese text is
found (``我的手机是13800138000谢谢``); full-width forms (``１３８…``, ``＠``) are
read as their ASCII twins. Placeholders replace spans found in the original text
in one pass, so offsets stay right however many items there are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from engine.pipeline.types import Message, PipelineContext

__all__ = ["IBAN_LENGTHS", "KINDS", "Finding", "PiiRedact", "find_pii", "redact"]

KINDS = ("email", "phone", "card", "cn_id", "iban")
SCOPES = ("storage", "ai")

#: IBAN length per country, from the SWIFT IBAN registry.
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Full-width ASCII variants (what Chinese input methods often produce) map one
# character to one character, so spans found in the folded copy fit the original.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# Spans already taken are overwritten with this in the working copy: not a digit,
# letter or separator, so later patterns neither match it nor run through it.
_MASK = "\x00"
_ANY_CANDIDATE = re.compile(r"[0-9@]")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9_%+-])(?<![A-Za-z0-9_%+-]\.)"  # start of a local part, not inside one
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]"
    r"(?![A-Za-z0-9-])",
    re.ASCII,
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:[ ]?[A-Za-z0-9]{4}){1,8}(?:[ ]?[A-Za-z0-9]{1,3})?", re.ASCII)
_CN_ID = re.compile(r"(?<![A-Za-z0-9])[1-9][0-9]{5}[ ]?(?:19|20)[0-9]{6}[ ]?[0-9]{3}[0-9Xx](?![A-Za-z0-9])", re.ASCII)
_CARD = re.compile(
    r"(?<![0-9])(?:"
    r"[1-9][0-9]{12,18}"
    r"|[1-9][0-9]{3}(?P<s>[ -])[0-9]{4}(?:(?P=s)[0-9]{4}){1,2}(?:(?P=s)[0-9]{1,3})?"
    r"|[1-9][0-9]{3}(?P<t>[ -])[0-9]{6}(?P=t)[0-9]{4,5}"
    r")(?![0-9])",
    re.ASCII,
)
_PHONE_INTL = re.compile(
    r"(?<![A-Za-z0-9+])(?:\+|00(?=[1-9]))[0-9]+(?:(?:[ .-]|[ ]?\([0-9]{1,5}\)[ ]?)[0-9]+)*", re.ASCII
)
_PHONE_CN_MOBILE = re.compile(
    r"(?<![A-Za-z0-9])(?<![0-9][.,])1[3-9][0-9](?:[0-9]{8}|(?P<s>[ -])[0-9]{4}(?P=s)[0-9]{4})(?![A-Za-z0-9])", re.ASCII
)
_PHONE_NANP = re.compile(
    r"(?<![A-Za-z0-9+])(?:1[ .-])?"
    r"(?:\([2-9][0-9]{2}\)[ ]?[2-9][0-9]{2}[ .-]|[2-9][0-9]{2}(?P<s>[.-])[2-9][0-9]{2}(?P=s))[0-9]{4}"
    r"(?![A-Za-z0-9])",
    re.ASCII,
)
_PHONE_NATIONAL = re.compile(
    r"(?<![A-Za-z0-9+])(?:\(0[1-9][0-9]{0,4}\)[ ]?|0[1-9][0-9]{0,4}[ -])[0-9]{2,8}(?:[ -][0-9]{2,8}){0,4}"
    r"(?![A-Za-z0-9])",
    re.ASCII,
)
_DIGITS = re.compile(r"[0-9]+")
_GROUP_AFTER = re.compile(r"[ .-][0-9]")
_GROUP_BEFORE = re.compile(r"[0-9][ .-]")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_DATE_SHAPED = re.compile(r"[0-9]{2}[ -][0-9]{1,2}[ -](?:19|20)[0-9]{2}\b", re.ASCII)

_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Finding:
    """One item of personal data: its kind and where it is in the text."""

    kind: str
    start: int
    end: int


Detector = Callable[[str, date], Iterator[tuple[int, int]]]


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of payment card numbers."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """Registry length for its country and ISO 7064 mod 97-10 (``mod 97 == 1``)."""
    iban = iban.upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not (iban.isascii() and iban.isalnum()):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def cn_id_ok(number: str, today: date) -> bool:
    """ISO 7064 MOD 11-2 check character and a birth date between 1900 and today."""
    if len(number) != 18 or not (number.isascii() and number[:17].isdigit()):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _CN_ID_WEIGHTS, strict=True))
    if _CN_ID_CHECK[total % 11] != number[17].upper():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= today


def _emails(work: str, today: date) -> Iterator[tuple[int, int]]:
    if "@" in work:
        for match in _EMAIL.finditer(work):
            if len(match.group().partition("@")[0]) <= 64:
                yield match.span()


def _ibans(work: str, today: date) -> Iterator[tuple[int, int]]:
    position = 0
    while match := _IBAN.search(work, position):
        start, end = match.start(), _iban_end(work, match)
        if end is not None and iban_ok(work[start:end].replace(" ", "")):
            position = end
            yield start, end
        else:
            # The candidate may have run into an IBAN that follows ("XX12 3456 DE89 3704 ..."): look again inside it.
            position = start + 1


def _iban_end(work: str, match: re.Match[str]) -> int | None:
    """Where the candidate's registry length ends, if it ends at a word boundary."""
    length = IBAN_LENGTHS.get(match.group()[:2].upper())
    if length is None:
        return None
    # The pattern may run on into the following words; the registry length says where the IBAN stops.
    end, seen = match.start(), 0
    while seen < length and end < match.end():
        seen += work[end] != " "
        end += 1
    return end if seen == length and not _ASCII_ALNUM.match(work, end) else None


def _cn_ids(work: str, today: date) -> Iterator[tuple[int, int]]:
    for match in _CN_ID.finditer(work):
        if cn_id_ok(match.group().replace(" ", ""), today):
            yield match.span()


def _continues(work: str, start: int, end: int, *, before: bool = True) -> bool:
    """A grouped number with another group after (or before) it is part of something longer."""
    if _GROUP_AFTER.match(work, end):
        return True
    return before and start >= 2 and bool(_GROUP_BEFORE.fullmatch(work, start - 2, start))


def _cards(work: str, today: date) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(work):
        digits = re.sub(r"[ -]", "", match.group())
        grouped = len(digits) != len(match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and not (grouped and _continues(work, *match.span())):
            yield match.span()


def _intl_phones(work: str, today: date) -> Iterator[tuple[int, int]]:
    for match in _PHONE_INTL.finditer(work):
        text, start = match.group(), match.start()
        if text.startswith("00"):
            digits = len(re.sub(r"[^0-9]", "", text)) - 2
            if 8 <= digits <= 15 and not text.isdigit():
                yield match.span()
            continue
        # A run that goes on past 15 digits ("+49 30 1234567 2026-11-27") is cut at the last
        # space-separated group that fits; groups joined by dashes or dots stay together.
        count, cut = 0, None
        for run in _DIGITS.finditer(text):
            count += 0 if run.group() == "0" and text[run.start() - 1 : run.start()] == "(" else len(run.group())
            if count > 15:
                break
            if count >= 8 and text[run.end() : run.end() + 1] in ("", " "):
                cut = run.end()
        if cut is not None:
            yield start, start + cut


def _pattern_phones(pattern: re.Pattern[str], *, digits: tuple[int, int] = (0, 99), before: bool = True) -> Detector:
    """Matches of ``pattern`` with ``digits`` digits that are neither part of a longer number nor a date."""
    low, high = digits

    def detect(work: str, today: date) -> Iterator[tuple[int, int]]:
        for match in pattern.finditer(work):
            count = sum(char.isdigit() for char in match.group())
            if not low <= count <= high or _DATE_SHAPED.match(match.group()):
                continue
            if not _continues(work, *match.span(), before=before):
                yield match.span()

    return detect


# Most specific first: each kind's spans are masked before the next kind looks.
_DETECTORS: tuple[tuple[str, Detector], ...] = (
    ("email", _emails),
    ("iban", _ibans),
    ("cn_id", _cn_ids),
    ("card", _cards),
    ("phone", _intl_phones),
    # "86 13800138000": a country code before a mobile number is no reason to leave it.
    ("phone", _pattern_phones(_PHONE_CN_MOBILE, before=False)),
    ("phone", _pattern_phones(_PHONE_NANP)),
    ("phone", _pattern_phones(_PHONE_NATIONAL, digits=(9, 12))),
)


def find_pii(text: str, kinds: Collection[str] = KINDS, *, today: date | None = None) -> list[Finding]:
    """The personal data of ``kinds`` in ``text``, in text order, never overlapping."""
    work = text.translate(_FOLD)
    if not _ANY_CANDIDATE.search(work):
        return []
    today = today or datetime.now(UTC).date()
    found: list[Finding] = []
    for kind, detect in _DETECTORS:
        if kind not in kinds:
            continue
        spans = list(detect(work, today))
        for start, end in spans:
            found.append(Finding(kind, start, end))
            work = work[:start] + _MASK * (end - start) + work[end:]
    return sorted(found, key=lambda finding: finding.start)


def redact(text: str, kinds: Collection[str] = KINDS, *, today: date | None = None) -> tuple[str, set[str]]:
    """``text`` with each item found replaced by ``[kind]``, and the kinds found."""
    findings = find_pii(text, kinds, today=today)
    parts, position = [], 0
    for finding in findings:
        parts += [text[position : finding.start], f"[{finding.kind}]"]
        position = finding.end
    parts.append(text[position:])
    return "".join(parts), {finding.kind for finding in findings}


def _kinds_from(config: Mapping[str, Any]) -> frozenset[str]:
    kinds = config.get("kinds", KINDS)
    if isinstance(kinds, str) or not isinstance(kinds, (list, tuple)):
        raise TypeError(f"kinds must be a list of kinds, e.g. [email, phone]; got {kinds!r}")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must name at least one of {', '.join(KINDS)}; unknown: {unknown!r}")
    return frozenset(kinds)


class PiiRedact:
    """Replaces e-mail addresses, phone, card, Chinese ID and IBAN numbers with ``[kind]``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.kinds = _kinds_from(config)
        self.scope = config.get("scope", "storage")
        if self.scope not in SCOPES:
            raise ValueError(
                f"scope must be 'storage' (redact the stored text) or 'ai' (only what AI sees); got {self.scope!r}"
            )

    def process(self, message: Message, context: PipelineContext) -> Message:
        # Birth dates may be "today" somewhere ahead of UTC.
        today = datetime.fromtimestamp(context.now, UTC).date() + timedelta(days=1)
        changes: dict[str, Any] = {}
        found: set[str] = set()
        if self.scope == "storage":
            changes["text"], found = redact(message.text, self.kinds, today=today)
            if message.ai_text is not None:
                changes["ai_text"], more = redact(message.ai_text, self.kinds, today=today)
                found |= more
        else:
            source = message.text if message.ai_text is None else message.ai_text
            changes["ai_text"], found = redact(source, self.kinds, today=today)
        if not found:
            return message
        earlier = message.flags.get("pii")
        kinds = found | set(earlier if isinstance(earlier, list) else [])
        return message.replace(**changes, flags={**message.flags, "pii": sorted(kinds)})
