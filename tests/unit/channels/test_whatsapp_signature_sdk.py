"""Our X-Hub-Signature-256 check agrees with pywa's (a widely used WhatsApp Cloud SDK) on the same bodies.

Two independent readings of Meta's rule must accept the same signed bodies and
refuse the same forged or altered ones. The one place they differ is deliberate:
pywa also accepts the bare hex digest without ``sha256=``, which Meta never
sends; we refuse it.
"""

from __future__ import annotations

import time

import pytest
import pywa.utils as pywa_utils

from connectors.channels.whatsapp import WhatsApp
from engine.channels.errors import SignatureInvalid
from engine.channels.types import WebhookRequest
from tests.vendors.whatsapp import APP_SECRET, PHONE_NUMBER_ID, WhatsAppEmulator, image_message, text_message

META = WhatsAppEmulator()
CHANNEL = WhatsApp(
    account="default",
    phone_number_id=PHONE_NUMBER_ID,
    access_token="token",
    app_secret=APP_SECRET,
    verify_token="verify",
)
BODIES = [
    META.webhook_body([text_message("Does it come in another color?")]),
    META.webhook_body([image_message(caption="Die Schachtel kam so an — 箱子坏了")]),
    b"{}",
    b"",
]


def ours(body: bytes, header: str) -> bool:
    request = WebhookRequest("POST", "/webhooks/whatsapp", {"x-hub-signature-256": header}, {}, body, time.time())
    try:
        CHANNEL.verify(request)
    except SignatureInvalid:
        return False
    return True


def theirs(body: bytes, header: str) -> bool:
    return bool(pywa_utils.webhook_updates_validator(APP_SECRET, body, header))


@pytest.mark.parametrize("body", BODIES)
def test_both_accept_metas_signature_and_refuse_forgeries(body: bytes) -> None:
    cases = {
        "signed": META.signature(body),
        "other secret": META.signature(body, secret="not-the-app-secret"),
        "signed another body": META.signature(body + b" "),
        "one digit changed": META.signature(body)[:-1] + ("0" if META.signature(body)[-1] != "0" else "1"),
        "upper-case hex": "sha256=" + META.signature(body).removeprefix("sha256=").upper(),
        "empty digest": "sha256=",
    }
    verdicts = {name: (ours(body, header), theirs(body, header)) for name, header in cases.items()}
    assert verdicts["signed"] == (True, True)
    disagree = {name: v for name, v in verdicts.items() if v[0] != v[1]}
    assert not disagree, f"the checks disagree: {disagree}"
    assert sum(v[0] for v in verdicts.values()) == 1  # only Meta's own signature passes


def test_a_bare_digest_is_refused_by_us_though_pywa_takes_it() -> None:
    body = BODIES[0]
    bare = META.signature(body).removeprefix("sha256=")
    assert theirs(body, bare) and not ours(body, bare)
