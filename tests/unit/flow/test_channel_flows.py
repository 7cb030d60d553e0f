"""What flows say about channels: accounts they serve, vendor templates, what a message carries."""

from __future__ import annotations

import textwrap

from engine.flow.context import FlowSet, InterpreterContext
from engine.flow.installation import Installation
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.flowtest.simulate import Simulator

SALES = Installation(
    channel_accounts={"whatsapp": frozenset({"default", "sales"}), "telegram": frozenset({"default"})},
    source="flowdesk.yaml",
)


def _compile(text: str, installation: Installation | None = None) -> tuple[CompiledFlow | None, list[str]]:
    result = compile_source(textwrap.dedent(text).lstrip("\n"), "t.yaml", installation=installation)
    return result.flow, [f"{d.code} {d.line}:{d.column} {d.message} | {d.hint}" for d in result.diagnostics]


def _one(found: list[str], code: str) -> list[str]:
    return [line for line in found if line.startswith(code + " ")]


def _simulator(flow: CompiledFlow, **contact: str) -> Simulator:
    def unexpected(call: object, at: str) -> None:
        raise AssertionError(f"unexpected call {call}")

    return Simulator(InterpreterContext(FlowSet([flow])), flow, ai=unexpected, http=unexpected, contact=contact)


ACCOUNTS = """
flow: sales
channels: [telegram, "whatsapp:sales", "whatsapp:salse", "api:crm"]
steps:
  hi: { say: hello }
"""


def test_an_account_the_settings_do_not_configure_is_an_error_with_did_you_mean() -> None:
    _, found = _compile(ACCOUNTS, SALES)
    typo, api = _one(found, "FD216")
    assert typo.startswith("FD216 2:40 channel account whatsapp:salse is not configured in flowdesk.yaml")
    assert typo.endswith("| did you mean 'sales'?")
    # api has no account at all in these settings
    assert "channel account api:crm is not configured in flowdesk.yaml (accounts of api: none)" in api
    assert api.endswith("add `crm:` under `channels.api` in flowdesk.yaml")


def test_accounts_are_not_checked_without_settings_but_the_kind_is() -> None:
    flow, found = _compile(ACCOUNTS)
    assert flow is not None and not _one(found, "FD216")
    _, typo = _compile(ACCOUNTS.replace("telegram,", "telegarm,"))
    assert "channel 'telegarm' is not known" in _one(typo, "FD205")[0]


def test_a_kind_serves_every_account_and_an_account_only_itself() -> None:
    flow, _ = _compile(ACCOUNTS)
    assert flow is not None
    assert flow.serves("telegram") and flow.serves("telegram:bot2")
    assert flow.serves("whatsapp:sales")
    assert not flow.serves("whatsapp") and not flow.serves("whatsapp:support")


TEMPLATE = """
flow: shipping
steps:
  listen: { wait: message }
  shipped:
    say:
      template: order_update
      params: ["{{ message.text | upper }}", "{{ contact.name }}"]
      text: "Order {{ message.text }} has shipped, {{ contact.name }}."
    next: listen
"""

ONLY_TEMPLATE = """
flow: reminder
steps:
  listen: { wait: message }
  remind:
    say: { template: order_reminder, language: pt_BR }
    next: listen
"""


def test_a_say_template_renders_its_params_and_keeps_its_text() -> None:
    flow, found = _compile(TEMPLATE)
    assert flow is not None, found
    sent = _simulator(flow, name="Ana", locale="es-MX").user("a-100")
    assert [s.text for s in sent] == ["Order a-100 has shipped, Ana."]
    assert sent[0].template == {"name": "order_update", "language": "es_MX", "params": ["A-100", "Ana"]}


def test_a_template_without_text_is_still_sent() -> None:
    flow, found = _compile(ONLY_TEMPLATE)
    assert flow is not None, found
    sent = _simulator(flow).user("hello")
    assert [(s.text, s.template) for s in sent] == [("", {"name": "order_reminder", "language": "pt_BR", "params": []})]


def test_template_params_and_names_are_checked() -> None:
    _, broken = _compile(TEMPLATE.replace('"{{ contact.name }}"]', '"{{ contact.name }"]'))
    assert _one(broken, "FD404"), broken
    assert _one(broken, "FD404")[0].startswith("FD404 7:46 template syntax error")
    _, bad_name = _compile(TEMPLATE.replace("template: order_update", "template: Order Update"))
    assert any(line.startswith("FD1") for line in bad_name), bad_name


MEDIA = """
flow: media
steps:
  listen: { wait: message }
  tell:
    say: "{{ message.attachments | length }} file(s), choice {{ message.choice or 'none' }}, at {{ message.at[:4] }}"
    next: listen
"""


def test_a_message_carries_what_the_customer_sent_besides_text() -> None:
    flow, found = _compile(MEDIA)
    assert flow is not None, found
    simulator = _simulator(flow)
    assert [s.text for s in simulator.user("look")] == ["0 file(s), choice none, at " + simulator.at[:4]]


IMAGE = """
flow: parts
steps:
  listen: { wait: message }
  show:
    say:
      text: "Here is part {{ message.text }}:"
      image: "https://shop.example.com/img/{{ message.text }}.jpg"
    next: listen
"""


def test_a_say_can_send_an_image_with_its_text() -> None:
    flow, found = _compile(IMAGE)
    assert flow is not None, found
    sent = _simulator(flow).user("sku-9")
    assert [(s.text, s.attachments) for s in sent] == [
        ("Here is part sku-9:", ({"kind": "image", "url": "https://shop.example.com/img/sku-9.jpg"},))
    ]
    body = IMAGE.index("      text:"), IMAGE.index("    next:")
    _, empty = _compile(IMAGE[: body[0]] + "      {}\n" + IMAGE[body[1] :])
    assert empty and empty[0].startswith("FD1"), empty
