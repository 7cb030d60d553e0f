"""Telegram as a channel: Bot API webhooks in, ``sendMessage`` / ``sendPhoto`` out.

Inbound, Telegram proves a webhook is its own with a shared secret header
(``X-Telegram-Bot-Api-Secret-Token``, set by ``setWebhook``), checked in constant
time before the body is read. Each update carries one event; its ``update_id`` is
the message id, so a redelivered update is stored once. Button presses arrive as
``callback_query``: buttons carry only an index (``callback_data`` is limited to 64
bytes) and the label is read back from the keyboard Telegram sends with the press.

Outbound, a reply becomes one call per part: media first, then the text split at
4096 characters, buttons on the last part. The parts a key got through are
remembered (in memory, bounded), so a retry after a failure half-way sends only
the missing parts, and a key sent whole is a ``duplicate``.

The bot token sits in every API URL: errors raised here never carry the URL, and
the ``httpx`` logger's request lines are redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.channels.degrade import image_links, split_text
from engine.channels.errors import (
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    PayloadInvalid,
    SignatureInvalid,
)
from engine.channels.host import ChannelConfig
from engine.channels.http import MAX_RETRY_AFTER, http_client, retry_after
from engine.channels.types import (
    Attachment,
    Capabilities,
    Decoded,
    Ignored,
    Incoming,
    OutboundMessage,
    Receipt,
    WebhookRequest,
)
from engine.errors import ConfigError
from engine.settings_sections import DEFAULT_ACCOUNT

log = logging.getLogger(__name__)

NAME = "telegram"
DEFAULT_API_BASE = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CAPABILITIES = Capabilities(text=True, choices=True, images=True, files=True, max_text_length=4096)
#: What setWebhook asks for; edits are received (and ignored, counted) so they are not silently lost.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
#: Telegram's own rule for the secret token.
_SECRET_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,256}")
#: Keys whose sent parts are remembered: far more than the retries in flight at once.
SENT_KEYS_KEPT = 10_000
#: callback_data of our buttons: this prefix and the choice's index.
_CHOICE_PREFIX = "fd:"

# -- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """One bot account's settings (``channels.telegram`` in the settings contract)."""

    bot_token: str
    secret_token: str
    api_base: str = DEFAULT_API_BASE

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, where: str) -> TelegramSettings:
        token = str(params.get("bot_token") or "")
        secret = str(params.get("secret_token") or "")
        if not token:
            raise ConfigError(f"{where}.bot_token is not set: give the token @BotFather issued for the bot")
        if not _SECRET_FORMAT.fullmatch(secret):
            raise ConfigError(
                f"{where}.secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule); "
                "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        api_base = str(params.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        if not api_base.startswith(("https://", "http://")):
            raise ConfigError(f"{where}.api_base must be an http(s) URL like {DEFAULT_API_BASE}; it is {api_base!r}")
        return cls(bot_token=token, secret_token=secret, api_base=api_base)


# -- the channel --------------------------------------------------------------------------------


class Telegram:
    """One Telegram bot: a webhook channel that acknowledges button presses and registers itself."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(self, settings: TelegramSettings, *, account: str) -> None:
        self.account = account
        self._settings = settings
        self._secret = settings.secret_token.encode()
        #: key -> {part index: Telegram message_id}, oldest key first
        self._sent: OrderedDict[str, dict[int, str]] = OrderedDict()
        #: key -> (its lock, how many attempts hold or wait for it)
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        _REDACTED_TOKENS.add(settings.bot_token)

    # -- inbound ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """The secret header must be the configured one (constant time, before parsing)."""
        presented = request.header(SECRET_HEADER)
        if presented is None:
            raise SignatureInvalid(f"no {SECRET_HEADER} header")
        if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self._secret):
            raise SignatureInvalid(f"{SECRET_HEADER} does not match this account's secret_token")

    def decode(self, request: WebhookRequest) -> Sequence[Decoded]:
        """The one event of a Telegram update."""
        return [decode_update(_parse(request.body))]

    async def acknowledge(self, decoded: Sequence[Decoded]) -> None:
        """Answer each button press so the customer's button stops spinning; failures are logged."""
        for item in decoded:
            query = _mapping(item.raw.get("callback_query")) if isinstance(item, Incoming) else None
            query_id = query.get("id") if query else None
            if not isinstance(query_id, str | int) or isinstance(query_id, bool):
                continue
            try:
                await self._call("answerCallbackQuery", {"callback_query_id": str(query_id)})
            except Exception as exc:  # an unanswered spinner is cosmetic: never fail the webhook
                log.warning("telegram %s: answerCallbackQuery failed: %s", self.account, _redact(str(exc)))

    # -- outbound --------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Receipt:
        """Every part of the message not yet acknowledged by Telegram, in order."""
        calls = plan(message)
        # An attempt that outlived its timeout may still be sending when the retry starts:
        # one key's parts go out one attempt at a time, so the retry sees what the first sent.
        async with self._exclusive(message.key):
            return await self._send_parts(message.key, calls)

    async def _send_parts(self, key: str, calls: list[tuple[str, dict[str, Any]]]) -> Receipt:
        done = self._sent.get(key, {})
        if len(done) == len(calls):
            return Receipt("duplicate", channel_message_id=done[len(calls) - 1] or None)
        for index, (method, body) in enumerate(calls):
            if index in done:
                continue  # acknowledged on an earlier attempt of this key
            result = await self._call(method, body)
            message_id = result.get("message_id") if isinstance(result, Mapping) else None
            self._remember(key, index, "" if message_id is None else str(message_id))
        return Receipt("sent", channel_message_id=self._sent[key][len(calls) - 1] or None)

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock; the lock is dropped when no attempt of the key waits for it."""
        entry = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        entry[1][0] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if entry[1][0] == 0:
                del self._locks[key]

    def _remember(self, key: str, index: int, message_id: str) -> None:
        self._sent.setdefault(key, {})[index] = message_id
        self._sent.move_to_end(key)
        while len(self._sent) > SENT_KEYS_KEPT:
            self._sent.popitem(last=False)

    # -- setup -----------------------------------------------------------------------------

    async def setup(self, public_url: str) -> str:
        """``setWebhook`` to ``public_url`` with the secret token; Telegram's refusal is raised."""
        body = {
            "url": public_url,
            "secret_token": self._settings.secret_token,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        await self._call("setWebhook", body)
        kinds = ", ".join(ALLOWED_UPDATES)
        return f"Telegram now sends this bot's updates ({kinds}) to {public_url}, with the secret token header"

    # -- the Bot API -----------------------------------------------------------------------

    async def _call(self, method: str, body: Mapping[str, Any]) -> Any:
        """One Bot API call; its ``result``, or the channel error Telegram's answer stands for."""
        url = f"{self._settings.api_base}/bot{self._settings.bot_token}/{method}"
        try:
            response = await http_client().post(url, json=body)
        except httpx.TimeoutException:
            raise ChannelUnavailable(f"telegram did not answer {method} in time") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # its text would name the URL, and so the token
            raise ChannelUnavailable(f"telegram could not be reached for {method}: {type(exc).__name__}") from None
        return self._result(method, response)

    def _result(self, method: str, response: httpx.Response) -> Any:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, Mapping) else {}
        # Redirects are not followed: a 3xx is no answer, refused like a 4xx.
        if 200 <= response.status_code < 300 and answer.get("ok", True) is True:
            return answer.get("result")
        raise _api_error(method, response, answer)


def _api_error(method: str, response: httpx.Response, answer: Mapping[str, Any]) -> Exception:
    """Telegram's ``{"ok": false, "error_code", "description", "parameters"}`` as a channel error."""
    code = answer.get("error_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else response.status_code
    described = answer.get("description")
    description = _redact(described if isinstance(described, str) else response.text[:200].strip() or "no description")
    detail = f"telegram error {code}: {description}"
    if code == 429 or response.status_code == 429:
        parameters = _mapping(answer.get("parameters")) or {}
        wait = parameters.get("retry_after")
        seconds = _number(wait)
        delay = min(max(seconds, 0.0), MAX_RETRY_AFTER) if seconds is not None else None
        return ChannelThrottled(
            detail, delay if delay is not None else retry_after(response.headers.get("retry-after"))
        )
    if code >= 500 or response.status_code >= 500:
        return ChannelUnavailable(f"{detail} (on {method})")
    return DeliveryRejected(detail, code=str(code))


def plan(message: OutboundMessage) -> list[tuple[str, dict[str, Any]]]:
    """The Bot API calls one message takes: media first, then the text parts; buttons on the last call."""
    chat_id = message.recipient
    if not chat_id:  # Telegram would answer "chat_id is empty": say what is missing instead
        raise DeliveryRejected(
            "the reply names no Telegram chat to send to (its recipient is empty)", code="no_recipient"
        )
    media: list[tuple[str, dict[str, Any]]] = []
    links: list[str] = []
    for attachment in message.attachments:
        ref = attachment.url or attachment.media_id
        if attachment.kind == "image" and ref:
            media.append(("sendPhoto", {"chat_id": chat_id, "photo": ref}))
        elif attachment.kind == "file" and ref:
            media.append(("sendDocument", {"chat_id": chat_id, "document": ref}))
        elif attachment.url:  # audio, video, stickers: a link the customer can open
            links.append(attachment.url)
    text = image_links(message.text, links)
    texts = [part for part in split_text(text, CAPABILITIES.max_text_length) if part.strip()]
    calls = media + [("sendMessage", {"chat_id": chat_id, "text": part}) for part in texts]
    if not calls:
        raise DeliveryRejected("nothing to send: the reply has no text and no image or file", code="empty")
    if message.choices:
        calls[-1][1]["reply_markup"] = {"inline_keyboard": choice_keyboard(message.choices)}
    return calls


def choice_keyboard(choices: Sequence[str]) -> list[list[dict[str, str]]]:
    """One button per row; the button carries the choice's index (any label fits in 64 bytes)."""
    return [[{"text": choice, "callback_data": f"{_CHOICE_PREFIX}{index}"}] for index, choice in enumerate(choices)]


# -- decoding -----------------------------------------------------------------------------------


def _parse(body: bytes) -> Mapping[str, Any]:
    try:
        update = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadInvalid(f"a Telegram update is JSON; this body is not ({type(exc).__name__})") from None
    if not isinstance(update, Mapping):
        raise PayloadInvalid(f"a Telegram update is a JSON object; this body is a {type(update).__name__}")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise PayloadInvalid("a Telegram update has a numeric update_id; this one has none")
    return update


def decode_update(update: Mapping[str, Any]) -> Decoded:
    """What one update (already known to be an object with an ``update_id``) carries."""
    update_id = str(update["update_id"])
    if "message" in update:
        return _decode_message(update_id, _required(update, "message"), update)
    if "callback_query" in update:
        return _decode_callback(update_id, _required(update, "callback_query"), update)
    for kind in ("edited_message", "channel_post", "edited_channel_post"):
        if kind in update:
            return Ignored(kind)
    return Ignored("unknown_event")


def _decode_message(update_id: str, message: Mapping[str, Any], update: Mapping[str, Any]) -> Decoded:
    sender = _mapping(message.get("from")) or {}
    if sender.get("is_bot") is True:
        return Ignored("bot_message")  # another bot (or ourselves, in a group): answering it could loop
    content = _content(message)
    if content is None:
        return Ignored("unsupported_message")
    text, attachments, parts = content
    return Incoming(
        message_id=update_id,
        sender=_chat_id(message, sender),
        text=text,
        attachments=attachments,
        parts=parts,
        sender_name=_full_name(sender),
        locale=_string(sender.get("language_code")),
        at=_iso(message.get("date")),
        raw=update,
    )


def _decode_callback(update_id: str, query: Mapping[str, Any], update: Mapping[str, Any]) -> Decoded:
    presser = _mapping(query.get("from")) or {}
    origin = _mapping(query.get("message")) or {}
    data = query.get("data")
    if not isinstance(data, str):
        return Ignored("unsupported_callback")  # a game's button: no data to answer
    label = _button_label(origin, data) if data.startswith(_CHOICE_PREFIX) else data
    if label is None:
        return Ignored("stale_button")  # Telegram no longer sends the keyboard of a message this old
    return Incoming(
        message_id=update_id,
        sender=_chat_id(origin, presser),
        text=label,
        choice=label,
        sender_name=_full_name(presser),
        locale=_string(presser.get("language_code")),
        # no "at": Telegram does not say when the button was pressed (the message's date is the bot's)
        raw=update,
    )


def _button_label(message: Mapping[str, Any], data: str) -> str | None:
    """The label of the button whose callback_data is ``data``, from the keyboard Telegram sent back."""
    markup = _mapping(message.get("reply_markup")) or {}
    rows = markup.get("inline_keyboard")
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, Mapping) and button.get("callback_data") == data:
                return _string(button.get("text"))
    return None


_Content = tuple[str, tuple[Attachment, ...], tuple[Mapping[str, Any], ...]]


def _content(message: Mapping[str, Any]) -> _Content | None:
    """Text, attachments and typed parts of a message; None for a kind flows have no use for."""
    caption = _string(message.get("caption"))
    text = _string(message.get("text"))
    if text is not None:
        return text, (), ()
    photo = _largest(message.get("photo"))
    if photo is not None:
        return caption or "[photo]", (Attachment(kind="image", media_id=photo),), ()
    for key, kind in (("document", "file"), ("video", "video"), ("voice", "audio"), ("audio", "audio")):
        media = _mapping(message.get(key))
        if media is not None and _string(media.get("file_id")):
            return caption or f"[{key}]", (_attachment(kind, media),), ()
    location = _mapping(message.get("location"))
    if location is not None:
        latitude, longitude = _number(location.get("latitude")), _number(location.get("longitude"))
        if latitude is not None and longitude is not None:
            part = {"type": "location", "latitude": latitude, "longitude": longitude}
            return f"[location {latitude}, {longitude}]", (), (part,)
    sticker = _mapping(message.get("sticker"))
    if sticker is not None:
        emoji = _string(sticker.get("emoji")) or ""
        part = {"type": "sticker", "emoji": emoji, "file_id": _string(sticker.get("file_id")) or ""}
        part |= {"set_name": name} if (name := _string(sticker.get("set_name"))) else {}
        return emoji or "[sticker]", (), (part,)
    return None


def _attachment(kind: Any, media: Mapping[str, Any]) -> Attachment:
    return Attachment(
        kind=kind,
        media_id=_string(media.get("file_id")) or "",
        name=_string(media.get("file_name")) or "",
        mime_type=_string(media.get("mime_type")) or "",
    )


def _largest(sizes: Any) -> str | None:
    """The file_id of the largest of a photo's sizes (Telegram lists them smallest first)."""
    if not isinstance(sizes, list):
        return None
    found = [s for s in sizes if isinstance(s, Mapping) and _string(s.get("file_id"))]
    if not found:
        return None
    best = max(found, key=lambda s: (_number(s.get("width")) or 0) * (_number(s.get("height")) or 0))
    return _string(best.get("file_id"))


def _chat_id(message: Mapping[str, Any], sender: Mapping[str, Any]) -> str:
    """Whom to answer: the chat the message is in, else (an inaccessible callback message) the sender."""
    chat = _mapping(message.get("chat")) or {}
    for candidate in (chat.get("id"), sender.get("id")):
        if isinstance(candidate, int | str) and not isinstance(candidate, bool) and str(candidate):
            return str(candidate)
    raise PayloadInvalid("a Telegram message names no chat.id to answer")


def _required(update: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _mapping(update.get(key))
    if value is None:
        raise PayloadInvalid(f"update {update['update_id']}: {key} is not an object")
    return value


def _full_name(user: Mapping[str, Any]) -> str | None:
    names = [_string(user.get("first_name")), _string(user.get("last_name"))]
    return " ".join(n for n in names if n) or None


def _iso(date: Any) -> str:
    """A Unix time as ISO 8601 UTC; "" when it is not one."""
    seconds = _number(date)
    if seconds is None:
        return ""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    return number if math.isfinite(number) else None


# -- the token stays out of log lines -------------------------------------------------------------

#: Bot tokens of the channels built in this process, replaced in httpx's request log lines.
_REDACTED_TOKENS: set[str] = set()


def _redact(text: str) -> str:
    for token in _REDACTED_TOKENS:
        text = text.replace(token, "<bot token>")
    return text


class _TokenRedactor(logging.Filter):
    """httpx logs each request's URL at INFO: with Telegram that URL holds the bot token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_REDACTOR = _TokenRedactor()


def create(config: ChannelConfig) -> Telegram:
    """The registry's factory: one bot account."""
    where = f"channels.{config.kind}" + ("" if config.account == DEFAULT_ACCOUNT else f".accounts.{config.account}")
    channel = Telegram(TelegramSettings.from_params(config.params, where=where), account=config.account)
    httpx_log = logging.getLogger("httpx")
    if _REDACTOR not in httpx_log.filters:
        httpx_log.addFilter(_REDACTOR)
    return channel


create.required_settings = ("bot_token", "secret_token")  # type: ignore[attr-defined]
