"""The validator knows the installation: calendars, settings names and AI profiles
from flowdesk.yaml; hand-offs that time out; flows that compete for a channel;
YAML mistakes worded so a person can fix them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.flow.installation import Installation
from engine.flow.validate import compile_paths, compile_source

SHOP = Installation(
    calendars=frozenset({"support"}),
    settings_names=frozenset({"brand", "shop_api"}),
    ai_profiles=frozenset({"default"}),
    source="flowdesk.yaml",
)


def _flow(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


USES_INSTALLATION = _flow("""
    flow: shop
    ai:
      helpdesk:
        providers:
          - { use: openai, profile: defualt }
          - { use: faq, knowledge: kb/faq.yaml }
    steps:
      greet:
        say: "Welcome to {{ settings.brand }}, see {{ settings.shop_apii }}"
      listen: { wait: message }
      route:
        switch:
          - if: "business_hours('suport')"
            goto: answer
        default: answer
      answer:
        ai: helpdesk
        on_error: listen
        next: listen
""")


def _codes(source: str, installation: Installation | None) -> dict[str, tuple[int, int, str, str]]:
    result = compile_source(source, "shop.yaml", installation=installation)
    return {d.code: (d.line, d.column, d.message, d.hint) for d in result.diagnostics}


def test_names_missing_from_the_settings_are_errors_with_did_you_mean() -> None:
    found = _codes(USES_INSTALLATION, SHOP)
    assert found["FD213"][:2] == (9, 10)
    assert "settings.shop_apii is not defined in flowdesk.yaml" in found["FD213"][2]
    assert found["FD213"][3] == "did you mean 'shop_api'?"
    assert found["FD214"][:2] == (13, 13)
    assert "business_hours('suport'): flowdesk.yaml has no such calendar (known: 'support')" in found["FD214"][2]
    assert found["FD214"][3] == "did you mean 'support'?"
    assert found["FD215"][:2] == (5, 33)
    assert "AI profile 'defualt' of chain 'helpdesk'" in found["FD215"][2]
    assert found["FD215"][3] == "did you mean 'default'?"
    assert compile_source(USES_INSTALLATION, "shop.yaml", installation=SHOP).flow is None


def test_without_an_installation_those_names_are_not_checked() -> None:
    assert not {"FD213", "FD214", "FD215"} & set(_codes(USES_INSTALLATION, None))


def test_names_the_settings_define_pass() -> None:
    fixed = USES_INSTALLATION.replace("defualt", "default").replace("shop_apii", "shop_api")
    fixed = fixed.replace("suport", "support")
    assert compile_source(fixed, "shop.yaml", installation=SHOP).ok


def test_handoff_with_a_timeout_and_no_on_timeout_warns() -> None:
    source = _flow("""
        flow: human
        steps:
          human:
            handoff: { queue: tier1, timeout: 10m }
            next: human
    """)
    [warning] = [d for d in compile_source(source, "h.yaml").diagnostics if d.code == "FD305"]
    assert (warning.line, warning.column, warning.is_error) == (4, 30, False)
    assert "has a timeout (10m) but no `on_timeout`" in warning.message
    with_exit = source.replace("next: human", "on_timeout: human\n    next: human")
    assert not [d for d in compile_source(with_exit, "h.yaml").diagnostics if d.code == "FD305"]


def _write(root: Path, name: str, channels: str, extra: str = "") -> None:
    (root / name).write_text(f"flow: {name[:-5]}\nchannels: {channels}\n{extra}steps:\n  hi: {{ say: hi }}\n")


def test_two_flows_on_one_channel_at_one_priority_warn_naming_both_files(tmp_path: Path) -> None:
    _write(tmp_path, "alpha.yaml", "[webchat, telegram]")
    _write(tmp_path, "beta.yaml", '["*"]')
    project = compile_paths([tmp_path])
    [warning] = [d for d in project.diagnostics if d.code == "FD306"]
    assert warning.file == str(tmp_path / "beta.yaml") and (warning.line, warning.column) == (2, 1)
    assert f"'alpha' ({tmp_path / 'alpha.yaml'}) and 'beta'" in warning.message
    assert "on telegram, webchat at priority 0 with no `when`" in warning.message
    assert "`priority:`" in warning.hint and "`when:`" in warning.hint
    assert project.ok  # a warning


def test_a_priority_or_a_when_guard_settles_it(tmp_path: Path) -> None:
    _write(tmp_path, "alpha.yaml", "[webchat]")
    _write(tmp_path, "beta.yaml", "[webchat]", "priority: 5\n")
    _write(tmp_path, "gamma.yaml", "[webchat]", "when: \"contact.locale == 'zh'\"\n")
    _write(tmp_path, "delta.yaml", "[email]")
    assert not [d for d in compile_paths([tmp_path]).diagnostics if d.code == "FD306"]


def test_invalid_escape_in_double_quotes_is_named_with_a_fix() -> None:
    [d] = compile_source('flow: x\nsteps: {a: {say: "\\d+"}}\n', "q.yaml").diagnostics
    assert (d.code, d.line, d.column) == ("FD101", 2, 19)
    assert "`\\d` is not an escape" in d.message and "never closed" not in d.message
    assert "single quotes" in d.hint


def test_a_bare_star_says_to_quote_it() -> None:
    [d] = compile_source("flow: x\nchannels: [*]\nsteps: {a: {say: hi}}\n", "s.yaml").diagnostics
    assert (d.code, d.line, d.column) == ("FD101", 2, 12)
    assert "bare `*`" in d.message and '"*"' in d.hint


def test_complex_key_of_a_one_line_file_is_reported_on_that_line() -> None:
    for text in ("? flow", "? flow\n"):
        diagnostics = compile_source(text, "k.yaml").diagnostics
        assert diagnostics and all(d.line == 1 and d.column <= len("? flow") + 1 for d in diagnostics)
