"""WhatsApp Cloud API (Meta): webhooks in, Graph ``/messages`` calls out, one phone number per account.

In: Meta checks the callback URL with a ``GET ?hub.mode=subscribe&hub.verify_token=..&
hub.challenge=..`` (:meth:`WhatsApp.handshake`), then POSTs events signed with
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``
(:meth:`WhatsApp.verify`, before anything is parsed). One body may carry messages
and delivery statuses for several phone numbers of the business account; an
account decodes only its own number's (:meth:`WhatsApp.decode`).

Out: ``POST {api_base}/{api_version}/{phone_number_id}/messages`` with the access
token as a bearer. Choices become reply buttons (up to 3), a list (up to 10) or a
numbered list; each button or row id is the choice itself, so the reply maps
back to it whatever its shortened title says. A message may take several calls
(split text, attachments, the buttons): each call is recorded per delivery key
and part, so a retry after a failure sends only what the vendor did not take.
Outside the 24 h window only a template may be sent (the runtime sets
``OutboundMessage.template``); Graph's error codes map to the channel errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from engine.channels.degrade import numbered_choices, split_text
from engine.channels.errors import (
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    PayloadInvalid,
    ReplyWindowClosed,
    SignatureInvalid,
)
from engine.channels.host import ChannelConfig
from engine.channels.http import DEFAULT_RETRY_AFTER, http_client, retry_after, send_raw
from engine.channels.types import (
    OTHER_ACCOUNT,
    Attachment,
    Capabilities,
    Decoded,
    Ignored,
    Incoming,
    OutboundMessage,
    Receipt,
    StatusUpdate,
    WebhookAnswer,
    WebhookRequest,
)

log = logging.getLogger(__name__)

NAME = "whatsapp"
API_BASE = "https://graph.facebook.com"
API_VERSION = "v21.0"
CAPABILITIES = Capabilities(
    text=True,
    choices=True,
    images=True,
    files=True,
    max_text_length=4096,
    reply_window=timedelta(hours=24),
    templates=True,
)

# Meta's limits for interactive messages: past them Graph refuses the whole message (code 131009).
MAX_BUTTONS = 3
MAX_ROWS = 10
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
ROW_TITLE_MAX = 24
ROW_ID_MAX = 200
ROW_DESCRIPTION_MAX = 72
#: an interactive message's body is shorter than a text message's
INTERACTIVE_BODY_MAX = 1024
#: the label of the button that opens a list
LIST_BUTTON = "Choose"
#: an interactive message needs a body; this one stands in when the flow gave only choices
CHOICES_PROMPT = "Please choose:"

#: Graph codes that mean "slow down", not "never": throughput (130429), one customer
#: messaged too often (131056), the app's rate limit (80007, 4).
THROTTLE_CODES = frozenset({4, 80007, 130429, 131056})
#: 131047: more than 24 h since the customer wrote; only a template may reach them now.
REENGAGEMENT_CODE = 131047
#: Meta allows about one message every 6 s to the same customer (the pair rate limit).
PAIR_RETRY_AFTER = 6.0
#: delivery keys remembered for "never send a key twice"; older ones are forgotten first
SENT_KEYS_KEPT = 10_000

_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")
_MEDIA_KINDS: dict[str, str] = {
    "image": "image",
    "document": "file",
    "audio": "audio",
    "video": "video",
    "sticker": "sticker",
}
_STATUSES = ("sent", "delivered", "read", "failed")
#: message types a customer can send that carry nothing a flow acts on
_IGNORED_TYPES = {"reaction": "reaction", "unsupported": "unsupported", "system": "system", "ephemeral": "unsupported"}


class WhatsApp:
    """One WhatsApp Business phone number as a channel."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        account: str,
        phone_number_id: str,
        access_token: str,
        app_secret: str,
        verify_token: str,
        api_base: str = API_BASE,
        api_version: str = API_VERSION,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account = account
        self.phone_number_id = phone_number_id
        self._access_token = access_token
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token.encode()
        self.messages_url = f"{api_base.rstrip('/')}/{api_version.strip('/')}/{phone_number_id}/messages"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._secrets = tuple(s for s in (access_token, app_secret, verify_token) if s)
        # key -> {part index: wamid} while a delivery is partly sent; key -> last wamid once done
        self._parts: OrderedDict[str, dict[int, str]] = OrderedDict()
        self._done: OrderedDict[str, str] = OrderedDict()
        # keys being sent right now: an attempt overlapping a slow one must not send its parts again
        self._sending: set[str] = set()

    def __repr__(self) -> str:  # never the token or the secret
        return f"WhatsApp(account={self.account!r}, phone_number_id={self.phone_number_id!r})"

    # -- in ----------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookAnswer:
        """Meta's URL check: the challenge back when the verify token matches, else 403."""
        query = request.query
        token = query.get("hub.verify_token", "").encode("utf-8", "surrogateescape")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(token, self._verify_token):
            return WebhookAnswer(403, "hub.verify_token does not match channels.whatsapp.verify_token")
        challenge = query.get("hub.challenge", "")
        if not challenge:
            return WebhookAnswer(400, "hub.challenge is missing")
        return WebhookAnswer(200, challenge)

    def verify(self, request: WebhookRequest) -> None:
        """Raise SignatureInvalid unless ``X-Hub-Signature-256`` is the app secret's HMAC of the raw body."""
        header = request.header("x-hub-signature-256")
        if not header:
            raise SignatureInvalid("X-Hub-Signature-256 is missing")
        match = _SIGNATURE.fullmatch(header)
        if match is None:
            raise SignatureInvalid("X-Hub-Signature-256 is not sha256=<64 lower-case hex digits>")
        expected = hmac.new(self._app_secret, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), match.group(1).encode()):
            raise SignatureInvalid(
                "X-Hub-Signature-256 does not match the body (is channels.whatsapp.app_secret right?)"
            )

    def decode(self, request: WebhookRequest) -> list[Decoded]:
        """What a verified body carries for this phone number; PayloadInvalid names what is wrong."""
        payload = _load_json(request.body)
        if "object" not in payload:
            raise PayloadInvalid("a WhatsApp webhook body has an 'object' key (whatsapp_business_account)")
        if payload["object"] != "whatsapp_business_account":
            return [Ignored("unknown_event")]
        decoded: list[Decoded] = []
        for e, entry in enumerate(_list(payload, "entry", "entry")):
            where = f"entry[{e}]"
            for c, change in enumerate(_list(_object(entry, where), "changes", f"{where}.changes")):
                decoded.extend(self._decode_change(_object(change, f"{where}.changes[{c}]"), f"{where}.changes[{c}]"))
        return decoded

    def _decode_change(self, change: Mapping[str, Any], where: str) -> list[Decoded]:
        if change.get("field") != "messages":
            return [Ignored("unknown_event")]
        value = _object(change.get("value"), f"{where}.value")
        metadata = value.get("metadata")
        number = metadata.get("phone_number_id") if isinstance(metadata, Mapping) else None
        if number is None:
            raise PayloadInvalid(f"{where}.value.metadata.phone_number_id is missing")
        if str(number) != self.phone_number_id:
            return [Ignored(OTHER_ACCOUNT)]  # the server offers it to the account of that number
        names = _contact_names(value.get("contacts"))
        decoded: list[Decoded] = []
        for m, message in enumerate(_list(value, "messages", f"{where}.value.messages", required=False)):
            decoded.append(_decode_message(_object(message, f"{where}.value.messages[{m}]"), names, where))
        for s, status in enumerate(_list(value, "statuses", f"{where}.value.statuses", required=False)):
            decoded.append(_decode_status(_object(status, f"{where}.value.statuses[{s}]"), f"{where}.statuses[{s}]"))
        return decoded or [Ignored("unknown_event")]

    # -- out ---------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send every part of ``message`` not sent before under its key; the last part's wamid is the receipt's."""
        done = self._done.get(message.key)
        if done is not None:
            return Receipt("duplicate", channel_message_id=done or None)
        if not message.recipient:
            raise DeliveryRejected("a WhatsApp reply needs the customer's number (recipient)", code="no_recipient")
        if not message.template:
            self._check_window(message)
        payloads = [_envelope(message.recipient, body) for body in self._bodies(message)]
        if not payloads:
            raise DeliveryRejected("the reply has no text, choice or attachment WhatsApp can show", code="empty")
        if message.key in self._sending:
            raise ChannelUnavailable("this delivery is being sent by an earlier attempt; try again once it ends")
        self._sending.add(message.key)
        try:
            sent = self._parts.setdefault(message.key, {})
            for index, payload in enumerate(payloads):
                if index not in sent:  # a retry: this part reached the vendor before the failure
                    sent[index] = await self._post(payload)
        finally:
            self._sending.discard(message.key)
        last = sent.get(len(payloads) - 1, "")
        self._remember(message.key, last)
        return Receipt("sent", channel_message_id=last or None)

    def _check_window(self, message: OutboundMessage) -> None:
        """Refuse a free-form reply the vendor would refuse (131047), without calling it."""
        last = _parse_time(message.customer_at)
        window = self.capabilities.reply_window
        if last is not None and window is not None and self._clock() - last > window:
            raise ReplyWindowClosed(f"the customer last wrote at {message.customer_at}, over 24 h ago: send a template")

    def _bodies(self, message: OutboundMessage) -> list[dict[str, Any]]:
        if message.template:
            return [_template_body(message)]
        choices = message.choices
        interactive = 0 < len(choices) <= MAX_ROWS
        text = message.text if interactive else numbered_choices(message.text, choices)
        parts = split_text(text, CAPABILITIES.max_text_length) if text else []
        last = None
        if interactive:
            # The buttons carry the last part as their body, which must be shorter.
            tail = split_text(parts.pop(), INTERACTIVE_BODY_MAX) if parts else []
            parts.extend(tail[:-1])
            last = _interactive_body(tail[-1] if tail else CHOICES_PROMPT, choices)
        bodies = [{"type": "text", "text": {"body": part}} for part in parts]
        bodies.extend(body for a in message.attachments if (body := _media_body(a)) is not None)
        if last is not None:
            bodies.append(last)
        return bodies

    async def _post(self, payload: Mapping[str, Any]) -> str:
        """One Graph call; the wamid it answers, or the channel error its answer stands for."""
        client = http_client()
        headers = {"Authorization": f"Bearer {self._access_token}"}
        request = client.build_request("POST", self.messages_url, json=payload, headers=headers)
        response = await send_raw(request, vendor="whatsapp")
        if not 200 <= response.status_code < 300:  # redirects are not followed: a 3xx is no answer either
            raise self._error(response)
        return _wamid(response)

    def _error(self, response: httpx.Response) -> Exception:
        """The channel error a Graph error answer stands for, with no secret in its message."""
        status = response.status_code
        error = _graph_error(response)
        code = error.get("code") if isinstance(error.get("code"), int) else None
        said = str(error.get("message") or response.text[:200]).strip()
        details = _text(error.get("error_data"), "details")
        if details and details not in said:  # Graph's longer reason (131047: since when the window is closed)
            said = f"{said} ({details})"
        if trace := _text(error, "fbtrace_id"):  # what Meta's support asks for
            said = f"{said} [fbtrace_id {trace}]"
        said = self._redact(said)
        detail = f"whatsapp error {code}: {said}" if code is not None else f"whatsapp answered {status}: {said}"
        if status == 429 or code in THROTTLE_CODES:
            header = response.headers.get("retry-after")
            default = PAIR_RETRY_AFTER if code == 131056 else DEFAULT_RETRY_AFTER
            return ChannelThrottled(detail, retry_after(header) if header else default)
        if code == REENGAGEMENT_CODE:
            return ReplyWindowClosed(detail, code=str(code))
        if status >= 500 or status == 408:
            return ChannelUnavailable(detail)
        return DeliveryRejected(detail, code=str(code if code is not None else status))

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _remember(self, key: str, wamid: str) -> None:
        self._parts.pop(key, None)
        self._done[key] = wamid
        while len(self._done) > SENT_KEYS_KEPT:
            self._done.popitem(last=False)
        while len(self._parts) > SENT_KEYS_KEPT:
            self._parts.popitem(last=False)


def create(config: ChannelConfig) -> WhatsApp:
    """The registry's factory: one phone number per account (``channels.whatsapp``)."""
    params = config.params
    return WhatsApp(
        account=config.account,
        # YAML reads an unquoted number id as an int; Meta's metadata has it as a string
        phone_number_id=str(params["phone_number_id"]),
        access_token=str(params["access_token"]),
        app_secret=str(params["app_secret"]),
        verify_token=str(params["verify_token"]),
        api_base=str(params.get("api_base") or API_BASE),
        api_version=str(params.get("api_version") or API_VERSION),
    )


create.required_settings = ("phone_number_id", "access_token", "app_secret", "verify_token")  # type: ignore[attr-defined]


# -- decoding ------------------------------------------------------------------------------------


def _load_json(body: bytes) -> Mapping[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadInvalid(f"the body is not JSON: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise PayloadInvalid(f"a WhatsApp webhook body is a JSON object, not {type(payload).__name__}")
    return payload


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PayloadInvalid(f"{where} is not an object")
    return value


def _list(parent: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> list[Any]:
    value = parent.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise PayloadInvalid(f"{where} is not a list")
    return value


def _text(parent: Any, key: str) -> str:
    """A string field, or "" when it is missing or not a string (content is read leniently)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, str) else ""


def _required(parent: Mapping[str, Any], key: str, where: str) -> str:
    """A field the message cannot be stored without (its id, its sender)."""
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadInvalid(f"{where}.{key} is missing or not a string")
    return value


def _contact_names(contacts: Any) -> dict[str, str]:
    if not isinstance(contacts, list):
        return {}
    names: dict[str, str] = {}
    for contact in contacts:
        name = _text(contact.get("profile") if isinstance(contact, dict) else None, "name")
        wa_id = _text(contact, "wa_id")
        if wa_id and name:
            names[wa_id] = name
    return names


def _iso(timestamp: Any) -> str:
    """Meta's Unix-seconds timestamp (a string) as ISO 8601; "" when it is not one."""
    if isinstance(timestamp, str) and timestamp.isdigit():
        timestamp = int(timestamp)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        return ""
    try:
        return datetime.fromtimestamp(timestamp, UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return ""


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decode_message(message: Mapping[str, Any], names: Mapping[str, str], where: str) -> Decoded:
    message_id = _required(message, "id", where)
    sender = _required(message, "from", where)
    kind = _text(message, "type")
    if kind in _IGNORED_TYPES:
        return Ignored(_IGNORED_TYPES[kind])
    content = _content(kind, message)
    if isinstance(content, Ignored):
        return content
    text, choice, attachments, parts = content
    return Incoming(
        message_id=message_id,
        sender=sender,
        text=text,
        choice=choice,
        attachments=attachments,
        sender_name=names.get(sender),
        at=_iso(message.get("timestamp")),
        raw=message,
        parts=parts,
    )


_Content = tuple[str, str | None, tuple[Attachment, ...], tuple[Mapping[str, Any], ...]]


def _content(kind: str, message: Mapping[str, Any]) -> _Content | Ignored:
    """What a message of ``kind`` says: text, choice, attachments, typed parts."""
    body = message.get(kind)
    if kind == "text":
        return _text(body, "body"), None, (), ()
    if kind == "interactive":
        return _interactive_reply(body)
    if kind == "button":  # a template's quick-reply button: its payload is what it stands for
        label = _text(body, "text")
        return label, _text(body, "payload") or label or None, (), ()
    if kind in _MEDIA_KINDS:
        return _media(kind, body)
    if kind == "location":
        return _location(body)
    if kind == "contacts":
        return _contacts(body)
    return Ignored("unsupported")


def _interactive_reply(body: Any) -> _Content | Ignored:
    reply_kind = _text(body, "type")
    if reply_kind not in ("button_reply", "list_reply"):
        return Ignored("unsupported_interactive")
    reply = body.get(reply_kind)
    title, choice = _text(reply, "title"), _text(reply, "id")
    # The id is the full choice we sent; the title may be its shortened label.
    return title or choice, choice or title or None, (), ()


def _media(kind: str, body: Any) -> _Content:
    name = _text(body, "filename") if kind == "document" else ""
    attachment = Attachment(
        kind=_MEDIA_KINDS[kind],  # type: ignore[arg-type]
        media_id=_text(body, "id"),
        mime_type=_text(body, "mime_type"),
        name=name,
    )
    voice = isinstance(body, dict) and body.get("voice") is True
    fallback = "[voice message]" if voice else f"[{kind}: {name}]" if name else f"[{kind}]"
    parts: tuple[Mapping[str, Any], ...] = ()
    if kind == "sticker":
        animated = isinstance(body, dict) and body.get("animated") is True
        parts = ({"type": "sticker", "media_id": attachment.media_id, "animated": animated},)
    return _text(body, "caption") or fallback, None, (attachment,), parts


def _location(body: Any) -> _Content:
    body = body if isinstance(body, dict) else {}
    latitude, longitude = body.get("latitude"), body.get("longitude")
    name, address = _text(body, "name"), _text(body, "address")
    part = {"type": "location", "latitude": latitude, "longitude": longitude, "name": name, "address": address}
    said = ", ".join(s for s in (name, address) if s) or f"{latitude}, {longitude}"
    return f"[location: {said}]", None, (), (part,)


def _contacts(body: Any) -> _Content:
    cards = body if isinstance(body, list) else []
    parts: list[Mapping[str, Any]] = []
    for card in cards:
        name = _text(card.get("name") if isinstance(card, dict) else None, "formatted_name")
        phones = card.get("phones") if isinstance(card, dict) else None
        numbers = [_text(p, "phone") for p in phones] if isinstance(phones, list) else []
        parts.append({"type": "contact", "name": name, "phones": [n for n in numbers if n]})
    names = ", ".join(str(p["name"]) for p in parts if p["name"]) or "a contact"
    return f"[contact: {names}]", None, (), tuple(parts)


def _decode_status(status: Mapping[str, Any], where: str) -> Decoded:
    wamid = _required(status, "id", where)
    state = _text(status, "status")
    if state not in _STATUSES:
        return Ignored("unknown_status")
    detail = code = ""
    errors = status.get("errors")
    if state == "failed" and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        error = errors[0]
        code = str(error.get("code", ""))
        explained = _text(error.get("error_data"), "details")
        detail = ": ".join(s for s in (_text(error, "title") or _text(error, "message"), explained) if s)
    return StatusUpdate(wamid, state, at=_iso(status.get("timestamp")), detail=detail, code=code)  # type: ignore[arg-type]


# -- encoding ------------------------------------------------------------------------------------


def _envelope(recipient: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient, **body}


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at a space when one is near the end, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:  # a whole word reads better, unless it loses half the label
        cut = cut[:space]
    return cut.rstrip() + "…"


def _interactive_body(text: str, choices: Sequence[str]) -> dict[str, Any]:
    if len(choices) <= MAX_BUTTONS:
        buttons = [
            {"type": "reply", "reply": {"id": choice[:BUTTON_ID_MAX], "title": shorten(choice, BUTTON_TITLE_MAX)}}
            for choice in choices
        ]
        action: dict[str, Any] = {"buttons": buttons}
        return {"type": "interactive", "interactive": {"type": "button", "body": {"text": text}, "action": action}}
    rows = [_row(choice) for choice in choices]
    action = {"button": LIST_BUTTON, "sections": [{"rows": rows}]}
    return {"type": "interactive", "interactive": {"type": "list", "body": {"text": text}, "action": action}}


def _row(choice: str) -> dict[str, str]:
    row = {"id": choice[:ROW_ID_MAX], "title": shorten(choice, ROW_TITLE_MAX)}
    if row["title"] != choice:  # the row's second line shows more of what the title cut
        row["description"] = shorten(choice, ROW_DESCRIPTION_MAX)
    return row


def _media_body(attachment: Attachment) -> dict[str, Any] | None:
    """An image, document, audio, video or sticker message by link (or by Meta's media id)."""
    kind = "document" if attachment.kind == "file" else attachment.kind
    if attachment.url:
        media: dict[str, Any] = {"link": attachment.url}
    elif attachment.media_id:
        media = {"id": attachment.media_id}
    else:
        return None
    if kind == "document" and attachment.name:
        media["filename"] = attachment.name
    return {"type": kind, kind: media}


def _template_body(message: OutboundMessage) -> dict[str, Any]:
    """``{"name", "language", "params"}`` as Graph's template message; the params fill the body's {{n}}."""
    template = message.template
    language = template.get("language") or message.contact.get("locale") or "en_US"
    code = language.get("code") if isinstance(language, Mapping) else language
    body: dict[str, Any] = {"name": str(template.get("name", "")), "language": {"code": str(code)}}
    params = template.get("params") or ()
    if template.get("components"):
        body["components"] = list(template["components"])
    elif params:
        parameters = [{"type": "text", "text": str(p)} for p in params]
        body["components"] = [{"type": "body", "parameters": parameters}]
    return {"type": "template", "template": body}


def _graph_error(response: httpx.Response) -> Mapping[str, Any]:
    """Graph's ``{"error": {...}}``, or {} when the answer is not one."""
    try:
        data = response.json()
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _wamid(response: httpx.Response) -> str:
    """The id Graph gave the message (``messages[0].id``); "" when the answer has none."""
    try:
        data = response.json()
    except ValueError:
        return ""
    messages = data.get("messages") if isinstance(data, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = _text(first, "id")
    if not wamid:  # Graph always names the message; a gateway in between may not
        log.warning("whatsapp took a message but its answer names no message id: statuses cannot be matched to it")
    return wamid


__all__ = ["CAPABILITIES", "WhatsApp", "create", "shorten"]
