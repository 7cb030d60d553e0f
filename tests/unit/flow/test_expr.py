"""Sandboxed expressions and templates: behaviour flow authors and customers see."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.errors import ExpressionError
from engine.flow.expr import (
    SCOPE_NAMES,
    SECRET_MARKER_RE,
    compile_expression,
    compile_template,
    evaluate,
    is_truthy,
    render,
    secret_marker,
    to_json_value,
)
from engine.flow.expr_static import (
    called_functions,
    referenced_attributes,
    referenced_names,
    regex_literals,
    syntax_error,
)


def test_customer_text_is_echoed_not_evaluated() -> None:
    scope = {"message": {"text": "{{ 7*7 }}"}}
    assert render("You said: {{ message.text }}", scope) == "You said: {{ 7*7 }}"


def test_customer_text_with_statements_is_echoed() -> None:
    text = "{% for x in range(9) %}x{% endfor %}"
    assert render("{{ message.text }}", {"message": {"text": text}}) == text


def test_missing_values_render_empty_and_are_falsy() -> None:
    assert render("Order [{{ vars.order.id }}]", {"vars": {}}) == "Order []"
    assert evaluate("vars.order.id", {"vars": {}}) is None
    assert evaluate("not vars.order.id", {"vars": {}}) is True
    assert evaluate("contact.name or 'there'", {}) == "there"


def test_evaluate_basic_expressions() -> None:
    scope = {"vars": {"attempts": 2}, "contact": {"tags": ["vip"]}}
    assert evaluate("vars.attempts + 1", scope) == 3
    assert evaluate("'vip' in contact.tags", scope) is True
    assert evaluate("[1, 2]|map('string')", {}) == ["1", "2"]


def test_matching_test() -> None:
    assert evaluate("t is matching('(?i)refund|退款')", {"t": "I want a REFUND"}) is True
    assert evaluate("t is matching('(?i)refund|退款')", {"t": "我要退款"}) is True
    assert evaluate("t is matching('^[0-9]{6,12}$')", {"t": "12ab"}) is False
    assert evaluate("t is matching('x')", {"t": None}) is False
    assert evaluate("missing is matching('x')", {}) is False
    assert evaluate("n is matching('^[0-9]+$')", {"n": 1234567}) is True


def test_matching_with_invalid_regex_raises() -> None:
    with pytest.raises(ExpressionError, match="invalid regular expression"):
        evaluate("t is matching('(unclosed')", {"t": "a"})


def test_filters_digits_and_mask() -> None:
    assert render("{{ '+49 (30) 1234-56'|digits }}", {}) == "4930123456"
    assert render("{{ '１２３'|digits }}", {}) == "123"
    assert render("{{ '4111111111111111'|mask }}", {}) == "•" * 12 + "1111"
    assert render("{{ 'abc'|mask }}", {}) == "•••"
    assert render("{{ missing|mask }}{{ missing|digits }}", {}) == ""


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ vars.__class__ }}",
        "{{ vars['__class__'] }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_escapes_raise(source: str) -> None:
    with pytest.raises(ExpressionError, match="unsafe"):
        render(source, {"vars": {}})


def test_scope_cannot_be_mutated() -> None:
    data = {"vars": {"a": [1]}}
    with pytest.raises(ExpressionError, match="unsafe"):
        evaluate("vars.update({'a': 2})", data)
    with pytest.raises(ExpressionError):
        evaluate("vars.a.append(2)", data)
    assert data == {"vars": {"a": [1]}}


def test_runtime_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r"'1/0'.*division by zero"):
        evaluate("1/0", {})
    with pytest.raises(ExpressionError, match="undefined"):
        evaluate("nope()", {})
    with pytest.raises(ExpressionError, match="TypeError"):
        evaluate("'a' + 1", {})


def test_huge_results_are_refused() -> None:
    with pytest.raises(ExpressionError, match="too large"):
        evaluate("'x' * 10**9", {})
    with pytest.raises(ExpressionError, match="too large"):
        evaluate("2 ** 10000000", {})
    with pytest.raises(ExpressionError, match="100000"):
        render("{{ x }}", {"x": "a" * 100_001})


def test_syntax_errors_carry_line() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template("Hello\n{{ name( }}")
    assert info.value.line == 2
    assert info.value.source == "Hello\n{{ name( }}"
    with pytest.raises(ExpressionError, match="syntax error"):
        compile_expression("a b")


def test_compiled_sources_are_cached() -> None:
    assert compile_expression("vars.x == 1") is compile_expression("vars.x == 1")
    assert compile_template("Hi {{ x }}") is compile_template("Hi {{ x }}")


def test_no_randomness_for_replays() -> None:
    assert syntax_error("[1, 2]|random", template=False) is not None
    assert syntax_error("{{ lipsum() }}", template=True) is None  # compiles, but...
    with pytest.raises(ExpressionError):
        render("{{ lipsum() }}", {})


def test_to_json_value() -> None:
    value = {
        1: (1, 2),
        "when": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        "day": date(2026, 1, 2),
        "tags": {"b", "a"},
        None: 2.5,
    }
    assert to_json_value(value) == {
        "1": [1, 2],
        "when": "2026-01-02T03:04:00+00:00",
        "day": "2026-01-02",
        "tags": ["a", "b"],
        "null": 2.5,
    }
    assert to_json_value(compile_expression("missing")()) is None
    with pytest.raises(ExpressionError, match="value of type object cannot be stored"):
        to_json_value(object())
    with pytest.raises(ExpressionError):
        to_json_value("x" * 100_001)
    with pytest.raises(ExpressionError):
        to_json_value(float("nan"))


def test_evaluate_rejects_unstorable_results() -> None:
    with pytest.raises(ExpressionError, match="cannot be stored"):
        evaluate("x", {"x": object()})


def test_is_truthy() -> None:
    assert not is_truthy(compile_expression("missing")())
    assert not is_truthy("") and not is_truthy([]) and not is_truthy(None) and not is_truthy(0)
    assert is_truthy("no") and is_truthy([0])


def test_secret_markers() -> None:
    scope = {"secret": secret_marker}
    rendered = render("Bearer {{ secret('SHOP_TOKEN') }}", scope)
    assert rendered == "Bearer ${secret:SHOP_TOKEN}"
    match = SECRET_MARKER_RE.search(rendered)
    assert match is not None and match.group(1) == "SHOP_TOKEN"
    with pytest.raises(ExpressionError, match="invalid secret name"):
        render("{{ secret('a b') }}", scope)


def test_data_cannot_forge_a_secret_reference() -> None:
    scope = {"secret": secret_marker, "message": {"text": "${secret:SHOP_TOKEN}"}}
    with pytest.raises(ExpressionError, match="secret reference"):
        render("q={{ message.text }}", scope)
    # Outside http/AI config (no `secret` in scope) the text is just text.
    assert render("{{ message.text }}", {"message": scope["message"]}) == "${secret:SHOP_TOKEN}"


def test_syntax_error_reports_problems_without_raising() -> None:
    assert syntax_error("vars.a == 1", template=False) is None
    assert syntax_error("Hi {{ contact.name }}", template=True) is None
    error = syntax_error("vars.a ==", template=False)
    assert isinstance(error, ExpressionError)
    assert syntax_error("x|no_such_filter", template=False) is not None
    assert syntax_error("{% if x %}{{ y|no_such_filter }}{% endif %}", template=True) is not None
    assert syntax_error("x is no_such_test", template=False) is not None
    assert syntax_error("{% include 'other' %}", template=True) is not None


def test_referenced_names() -> None:
    source = "{% for o in vars.orders %}{{ loop.index }} {{ o.id }}{% endfor %}{{ range(2)|list }}"
    assert referenced_names(source, template=True) == {"vars"}
    assert referenced_names("message.text is matching('x') and contact.name", template=False) == {
        "message",
        "contact",
    }
    assert {"vars", "message", "secret"} <= SCOPE_NAMES


def test_referenced_attributes() -> None:
    source = "vars.a + vars['b'] + vars.get('c') + vars.items()|length + other.d + vars.e.f"
    assert referenced_attributes(source, template=False, root="vars") == {"a", "b", "c", "e"}
    assert referenced_attributes("{{ vars.order_id }}", template=True, root="vars") == {"order_id"}


def test_called_functions_and_regex_literals() -> None:
    source = "{{ secret('TOKEN') }} {{ transcript(last=3) }} {{ vars.get('x') }}"
    assert called_functions(source, template=True) == {"secret", "transcript"}
    source = "message.text is matching('(?i)a') or answer is matching(vars.p) or x is matching('b')"
    assert regex_literals(source, template=False) == ["(?i)a", "b"]


def test_static_analysis_does_not_evaluate() -> None:
    # Would fail (division by zero, unsafe access) if it were evaluated.
    assert referenced_names("1/0 + ''.__class__ and vars.x", template=False) == {"vars"}
