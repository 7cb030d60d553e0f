"""schemas/flow.schema.json and schemas/settings.schema.json: valid, documented, accept
real documents, and point a person at the exact spot of a mistake."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parents[3] / "schemas"
FLOW_SCHEMA_ID = "https://flowdesk.dev/schemas/flow.schema.json"

Doc = dict[str, Any]

# The example of DESIGN.md section 3, with its `tests:` block.
DESIGN_FLOW = r"""
flow: shop-support
description: Front line for the web shop
channels: [webchat, telegram, whatsapp, email]
priority: 0
when: "contact.locale.startswith('zh')"
start: greet

vars: { attempts: 0 }

pipeline:
  inbound:
    - sensitive_words: { lists: [default], action: mask }
    - pii_redact: { kinds: [email, phone, card] }
  outbound:
    - sensitive_words: { action: block }

ai:
  helpdesk:
    system: "You are the support assistant of {{ settings.brand }}. Be brief."
    providers:
      - { use: openai, model: gpt-4o-mini, timeout: 8s, retries: 1 }
      - { use: dify, profile: kb }
      - { use: faq, knowledge: kb/faq.yaml }
    min_confidence: 0.4
    context: { strategy: relevance, max_turns: 12, max_tokens: 2000 }

steps:
  greet:
    say: "Hi {{ contact.name or 'there' }}! How can I help?"
    next: listen
  listen:
    wait: message
    timeout: 30m
    on_timeout: close
    next: route
  route:
    switch:
      - if: "message.text is matching('(?i)refund|退款')"
        goto: refund
      - if: "'vip' in contact.tags"
        goto: human
    default: answer
  answer:
    ai: helpdesk
    on_error: human
    next: listen
  refund:
    ask: "What's your order number?"
    save_as: order_id
    expect: "answer is matching('^[0-9]{6,12}$')"
    retry_prompt: "Order numbers have 6 to 12 digits. Could you check it?"
    max_attempts: 3
    on_fail: human
    next: lookup
  lookup:
    http:
      method: GET
      url: "{{ settings.shop_api }}/orders/{{ vars.order_id }}"
      headers: { Authorization: "Bearer {{ secret('SHOP_TOKEN') }}" }
      timeout: 5s
      retries: 3
    save_as: order
    on_error: human
    next: refund_done
  refund_done:
    say: "Order {{ vars.order.id }} is {{ vars.order.status }}. Your refund is filed."
    set: { attempts: "vars.attempts + 1" }
    next: listen
  human:
    handoff: { queue: tier1, timeout: 10m }
    say: "Connecting you to a colleague..."
    on_timeout: answer
    next: listen
  close:
    say: "Closing this chat. Thanks!"
    end: resolved

tests:
  - name: refund happy path
    mock: { http: { lookup: { id: "1234567", status: shipped } } }
    turns:
      - user: I want a refund
      - bot: /How can I help/
      - bot: What's your order number?
      - user: "1234567"
      - bot: /Order 1234567 is shipped/
"""

# Every other construct of the language, so the schema is known to accept all of them.
EVERY_CONSTRUCT_FLOW = r"""
flow: returns_v2
channels: ["*"]
priority: 5
vars: { reason: null, tries: 0, cart: [], profile: { tier: gold } }
pipeline:
  inbound:
    - normalize
    - normalize: { max_length: 4000, on_error: pass }
    - rate_limit: { max: 10, per: 1m, reply: "Slow down a little, please.", on_error: block }
    - pii_redact: { kinds: [cn_id, iban], scope: storage }
    - sensitive_words: { lists: [default, zh], action: flag, reply: "Please stay polite." }
    - acme.filters:Profanity: { strict: true, on_error: pass }
    - acme_spam
  outbound: []
ai:
  triage:
    providers:
      - { use: anthropic, profile: claude, temperature: 0.2, max_tokens: 300 }
      - { use: "acme.ai:Provider", params: { region: eu } }
      - { use: echo }
    timeout: 20s
    context: { strategy: recent, max_turns: 4 }
steps:
  menu:
    description: Main menu
    ask: "What do you need?"
    choices: [Track an order, Return an item, Something else]
    save_as: choice
    timeout: 1h
    on_timeout: bye
  pause:
    wait: 2s
  pause_seconds:
    wait: 90
  classify_it:
    classify:
      intents:
        refund: [I want my money back, refund]
        shipping: [where is my parcel]
      chain: triage
      min_confidence: 0.6
      text: "vars.choice"
    routes: { refund: to_billing, shipping: shipping_ai, _other: tally }
    save_as: intent
  shipping_ai:
    ai: triage
    send: false
    save_as: shipping_reply
    retries: 2
    timeout: 15000ms
    on_error: tally
    on_timeout: tally
  post:
    http:
      method: POST
      url: "https://hooks.example.com/returns"
      query: { source: flowdesk }
      json: { reason: "{{ vars.reason }}", items: [1, 2, 3] }
      timeout: 3
    on_error: tally
  post_raw:
    http: { method: PUT, url: "https://example.com/raw", body: "reason={{ vars.reason }}" }
  tally:
    set: { tries: "vars.tries + 1", flagged: true, notes: [a, b] }
  to_billing:
    call: { flow: billing, with: { order_id: "vars.order_id", urgent: true } }
    save_as: billing_result
    next: queue_simple
  queue_simple:
    handoff: returns
    on_timeout: hand_full
  hand_full:
    handoff: { queue: default, timeout: 1d, note: "Wants {{ vars.reason }}", priority: 2 }
  call_simple:
    call: billing
  transfer:
    goto_flow: { flow: sales }
  transfer_simple:
    goto_flow: sales
  bye:
    say: Bye!
    end: true
tests:
  - name: every turn kind
    channel: telegram
    contact: { name: Ana, tags: [vip], locale: es, customer_id: 42 }
    vars: { tries: 1 }
    mock:
      ai: { shipping_ai: "It ships tomorrow.", other_ai: { error: timeout } }
      http: { post: { status: 503 }, post_raw: { status: 201, body: { ok: true } } }
    turns:
      - user: Return an item
      - bot: What do you need?
      - elapse: 2h
      - elapse: 30
      - agent: accept
      - agent: { say: "Hello, Marta here." }
      - agent: resolve
      - step: menu
      - vars: { tries: 2, choice: Return an item }
      - end: resolved
"""

TEST_FILE = r"""
flow: shop-support
tests:
  - name: times out to close
    turns:
      - user: hi
      - bot: /How can I help/
      - elapse: 30m
      - bot: Closing this chat. Thanks!
      - end: resolved
"""

SETTINGS = r"""
brand: Acme Shop
values:
  shop_api: https://shop.example.com/api
  support_phone: "+33 1 23 45 67 89"
  vip_threshold: 500
server: { host: 0.0.0.0, port: 8080, public_url: "https://support.example.com" }
data_dir: .flowdesk
flows_dir: flows
database: { url: "${env:FLOWDESK_DATABASE_URL}" }
temporal:
  address: temporal.internal:7233
  namespace: default
  task_queue: flowdesk
  tls:
    ca_file: /etc/flowdesk/ca.pem
    cert_file: /etc/flowdesk/client.pem
    key_file: /etc/flowdesk/client.key
    server_name: temporal.internal
  ui_port: 8233
  embedded_port: 7233
log: { level: info, format: json }
channels:
  webchat: { enabled: true, widget_secret: "${env:WEBCHAT_SECRET}" }
  telegram: { enabled: true, bot_token: "${env:TELEGRAM_BOT_TOKEN}", secret_token: "${env:TELEGRAM_SECRET}" }
  whatsapp: { enabled: false, phone_number_id: "1234567890", verify_token: "${env:WA_VERIFY}" }
  email: { enabled: true, smtp_host: smtp.example.com, smtp_port: 587 }
  acme_pager: { enabled: true, endpoint: "https://pager.example.com" }
ai_profiles:
  kb:
    provider: dify
    base_url: https://dify.example.com/v1
    api_key: "${env:DIFY_API_KEY}"
    timeout: 10s
  openai:
    provider: openai
    api_key: "${env:OPENAI_API_KEY}"
    model: gpt-4o-mini
    params: { organization: acme }
business_hours:
  support:
    timezone: Europe/Paris
    weekly:
      mon: ["09:00-12:30", "13:30-18:00"]
      tue: ["09:00-18:00"]
      wed: ["09:00-18:00"]
      thu: ["09:00-18:00"]
      fri: ["09:00-17:00"]
      sat: []
      sun: []
    holidays: ["2025-12-25", "2026-01-01"]
  night_shift:
    timezone: UTC
    weekly: { mon: ["22:00-24:00"] }
word_lists:
  default: { files: [words/default-en.txt, words/default-zh.txt] }
  zh: { words: [退款骗局] }
limits: { max_steps_per_turn: 100, message_max_chars: 4000 }
"""


# ----------------------------------------------------------------------------- helpers


def _load(name: str) -> Doc:
    schema: Doc = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


@pytest.fixture(name="fx_flow_schema", scope="module")
def fx_flow_schema() -> Doc:
    return _load("flow.schema.json")


@pytest.fixture(name="fx_settings_schema", scope="module")
def fx_settings_schema() -> Doc:
    return _load("settings.schema.json")


@pytest.fixture(name="fx_flow_validator", scope="module")
def fx_flow_validator(fx_flow_schema: Doc) -> Draft202012Validator:
    return Draft202012Validator(fx_flow_schema)


@pytest.fixture(name="fx_test_file_validator", scope="module")
def fx_test_file_validator(fx_flow_schema: Doc) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(FLOW_SCHEMA_ID, Resource.from_contents(fx_flow_schema))
    return Draft202012Validator({"$ref": f"{FLOW_SCHEMA_ID}#/$defs/testFile"}, registry=registry)


@pytest.fixture(name="fx_settings_validator", scope="module")
def fx_settings_validator(fx_settings_schema: Doc) -> Draft202012Validator:
    return Draft202012Validator(fx_settings_schema)


def _messages(validator: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def _best(validator: Draft202012Validator, doc: Any) -> ValidationError:
    error = best_match(validator.iter_errors(doc))
    assert isinstance(error, ValidationError), "the document was expected to be invalid"
    return error


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_ONE = (
    "additionalProperties", "items", "propertyNames", "contains", "if", "then", "else", "not",
    "unevaluatedProperties", "unevaluatedItems",
)  # fmt: skip
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _subschemas(schema: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """Yield (keyword, path, subschema) for every subschema, recursively."""
    if not isinstance(schema, dict):
        return
    for keyword in _SCHEMA_MAPS:
        for name, sub in schema.get(keyword, {}).items():
            sub_path = f"{path}/{keyword}/{name}"
            yield keyword, sub_path, sub
            yield from _subschemas(sub, sub_path)
    for keyword in _SCHEMA_ONE:
        if keyword in schema:
            sub_path = f"{path}/{keyword}"
            yield keyword, sub_path, schema[keyword]
            yield from _subschemas(schema[keyword], sub_path)
    for keyword in _SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(keyword, [])):
            sub_path = f"{path}/{keyword}/{i}"
            yield keyword, sub_path, sub
            yield from _subschemas(sub, sub_path)


def _undocumented(schema: Doc) -> list[str]:
    return [
        path
        for keyword, path, sub in _subschemas(schema, "#")
        if keyword in ("properties", "$defs")
        and not (isinstance(sub, dict) and str(sub.get("description", "")).strip())
    ]


def _flow(text: str = DESIGN_FLOW) -> Doc:
    doc: Doc = yaml.safe_load(text)
    return doc


# ----------------------------------------------------------------------------- shape


@pytest.mark.parametrize("name", ["flow.schema.json", "settings.schema.json"])
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = _load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://flowdesk.dev/schemas/{name}"


@pytest.mark.parametrize("name", ["flow.schema.json", "settings.schema.json"])
def test_every_property_and_definition_is_described(name: str) -> None:
    missing = _undocumented(_load(name))
    assert not missing, "no description at:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", ["flow.schema.json", "settings.schema.json"])
def test_schema_file_uses_two_space_indentation(name: str) -> None:
    text = (SCHEMAS / name).read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def test_the_walk_sees_nested_properties(fx_flow_schema: Doc) -> None:
    paths = {path for _, path, _ in _subschemas(fx_flow_schema, "#")}
    assert "#/$defs/step/properties/default" in paths
    assert "#/$defs/turn/properties/agent/anyOf/1/properties/say" in paths


# ----------------------------------------------------------------------------- valid documents


def test_design_example_flow_is_valid(fx_flow_validator: Draft202012Validator) -> None:
    assert _messages(fx_flow_validator, _flow()) == []


def test_every_construct_is_accepted(fx_flow_validator: Draft202012Validator) -> None:
    assert _messages(fx_flow_validator, _flow(EVERY_CONSTRUCT_FLOW)) == []


def test_test_file_is_valid(fx_test_file_validator: Draft202012Validator) -> None:
    assert _messages(fx_test_file_validator, yaml.safe_load(TEST_FILE)) == []


def test_realistic_settings_are_valid(fx_settings_validator: Draft202012Validator) -> None:
    assert _messages(fx_settings_validator, yaml.safe_load(SETTINGS)) == []


# ----------------------------------------------------------------------------- flow mistakes


def _typo_next(doc: Doc) -> None:
    doc["steps"]["greet"]["nxet"] = doc["steps"]["greet"].pop("next")


def _bad_duration(doc: Doc) -> None:
    doc["steps"]["listen"]["timeout"] = "30 minutes"


def _bad_flow_id(doc: Doc) -> None:
    doc["flow"] = "Shop Support"


def _two_key_stage(doc: Doc) -> None:
    doc["pipeline"]["inbound"][0] = {
        "sensitive_words": {"action": "mask"},
        "pii_redact": {"kinds": ["email"]},
    }


def _zero_attempts(doc: Doc) -> None:
    doc["steps"]["refund"]["max_attempts"] = 0


def _handoff_typo(doc: Doc) -> None:
    doc["steps"]["human"]["handoff"] = {"queue": "tier1", "timout": "10m"}


def _end_capitalised(doc: Doc) -> None:
    doc["steps"]["close"]["end"] = "Resolved"


def _end_false(doc: Doc) -> None:
    doc["steps"]["close"]["end"] = False


def _provider_without_use(doc: Doc) -> None:
    doc["ai"]["helpdesk"]["providers"][0] = {"model": "gpt-4o-mini"}


def _bad_provider_ref(doc: Doc) -> None:
    doc["ai"]["helpdesk"]["providers"][1]["use"] = "acme.ai:"


def _bad_stage_action(doc: Doc) -> None:
    doc["pipeline"]["outbound"][0]["sensitive_words"]["action"] = "hide"


def _wait_typo(doc: Doc) -> None:
    doc["steps"]["listen"]["wait"] = "mesage"


def _turn_typo(doc: Doc) -> None:
    doc["tests"][0]["turns"][0] = {"usr": "I want a refund"}


def _turn_two_keys(doc: Doc) -> None:
    doc["tests"][0]["turns"][1] = {"user": "hi", "bot": "/How can I help/"}


def _bad_var_name(doc: Doc) -> None:
    doc["steps"]["refund"]["save_as"] = "order-id"


def _no_steps(doc: Doc) -> None:
    del doc["steps"]


FLOW_MISTAKES: list[tuple[Callable[[Doc], None], str, str]] = [
    (_typo_next, "$.steps.greet", "'nxet' was unexpected"),
    (_bad_duration, "$.steps.listen.timeout", "'30 minutes' does not match"),
    (_bad_flow_id, "$.flow", "'Shop Support' does not match"),
    (_two_key_stage, "$.pipeline.inbound[0]", "has too many properties"),
    (_zero_attempts, "$.steps.refund.max_attempts", "0 is less than the minimum of 1"),
    (_handoff_typo, "$.steps.human.handoff", "'timout' was unexpected"),
    (_end_capitalised, "$.steps.close.end", "'Resolved' does not match"),
    (_end_false, "$.steps.close.end", "True was expected"),
    (_provider_without_use, "$.ai.helpdesk.providers[0]", "'use' is a required property"),
    (_bad_provider_ref, "$.ai.helpdesk.providers[1].use", "'acme.ai:' does not match"),
    (_bad_stage_action, "$.pipeline.outbound[0].sensitive_words.action", "'hide' is not one of"),
    (_wait_typo, "$.steps.listen.wait", "'mesage' does not match"),
    (_turn_typo, "$.tests[0].turns[0]", "'usr' was unexpected"),
    (_turn_two_keys, "$.tests[0].turns[1]", "has too many properties"),
    (_bad_var_name, "$.steps.refund.save_as", "'order-id' does not match"),
    (_no_steps, "$", "'steps' is a required property"),
]


@pytest.mark.parametrize(
    ("mutate", "json_path", "message"),
    FLOW_MISTAKES,
    ids=[m.__name__.lstrip("_") for m, _, _ in FLOW_MISTAKES],
)
def test_flow_mistake_is_pinpointed(
    fx_flow_validator: Draft202012Validator,
    mutate: Callable[[Doc], None],
    json_path: str,
    message: str,
) -> None:
    doc = copy.deepcopy(_flow())
    mutate(doc)
    error = _best(fx_flow_validator, doc)
    assert error.json_path == json_path, error.message
    assert message in error.message


def test_test_file_must_not_carry_steps(fx_test_file_validator: Draft202012Validator) -> None:
    doc = yaml.safe_load(TEST_FILE)
    doc["steps"] = {"greet": {"say": "hi"}}
    error = _best(fx_test_file_validator, doc)
    assert error.json_path == "$"
    assert "'steps' was unexpected" in error.message


def test_mock_http_body_may_have_a_text_status(fx_flow_validator: Draft202012Validator) -> None:
    """A body like `{status: shipped}` is a body, not a response with a status code."""
    doc = _flow()
    doc["tests"][0]["mock"]["http"]["lookup"] = {"status": "shipped"}
    assert _messages(fx_flow_validator, doc) == []


# ----------------------------------------------------------------------------- settings mistakes


def _settings() -> Doc:
    doc: Doc = yaml.safe_load(SETTINGS)
    return doc


def _server_typo(doc: Doc) -> None:
    doc["sever"] = doc.pop("server")


def _log_level(doc: Doc) -> None:
    doc["log"]["level"] = "verbose"


def _malformed_secret(doc: Doc) -> None:
    doc["ai_profiles"]["openai"]["api_key"] = "${env:OPENAI-API-KEY}"


def _malformed_vendor_secret(doc: Doc) -> None:
    doc["channels"]["telegram"]["bot_token"] = "${TELEGRAM_BOT_TOKEN}"


def _short_hour(doc: Doc) -> None:
    doc["business_hours"]["support"]["weekly"]["mon"][0] = "9:00-12:30"


def _weekday_typo(doc: Doc) -> None:
    doc["business_hours"]["support"]["weekly"]["monday"] = ["09:00-12:00"]


def _no_timezone(doc: Doc) -> None:
    del doc["business_hours"]["night_shift"]["timezone"]


def _bad_holiday(doc: Doc) -> None:
    doc["business_hours"]["support"]["holidays"][0] = "25/12/2025"


def _bad_temporal_address(doc: Doc) -> None:
    doc["temporal"]["address"] = "temporal.internal"


def _zero_steps_limit(doc: Doc) -> None:
    doc["limits"]["max_steps_per_turn"] = 0


SETTINGS_MISTAKES: list[tuple[Callable[[Doc], None], str, str]] = [
    (_server_typo, "$", "'sever' was unexpected"),
    (_log_level, "$.log.level", "'verbose' is not one of"),
    (_malformed_secret, "$.ai_profiles.openai.api_key", "does not match"),
    (_malformed_vendor_secret, "$.channels.telegram.bot_token", "does not match"),
    (_short_hour, "$.business_hours.support.weekly.mon[0]", "'9:00-12:30' does not match"),
    (_weekday_typo, "$.business_hours.support.weekly", "'monday' was unexpected"),
    (_no_timezone, "$.business_hours.night_shift", "'timezone' is a required property"),
    (_bad_holiday, "$.business_hours.support.holidays[0]", "'25/12/2025' does not match"),
    (_bad_temporal_address, "$.temporal.address", "does not match"),
    (_zero_steps_limit, "$.limits.max_steps_per_turn", "0 is less than the minimum of 1"),
]


@pytest.mark.parametrize(
    ("mutate", "json_path", "message"),
    SETTINGS_MISTAKES,
    ids=[m.__name__.lstrip("_") for m, _, _ in SETTINGS_MISTAKES],
)
def test_settings_mistake_is_pinpointed(
    fx_settings_validator: Draft202012Validator,
    mutate: Callable[[Doc], None],
    json_path: str,
    message: str,
) -> None:
    doc = _settings()
    mutate(doc)
    error = _best(fx_settings_validator, doc)
    assert error.json_path == json_path, error.message
    assert message in error.message
