"""Static analysis of flow expressions and templates, for the validator.

Parses only — never generates code, never evaluates. Each source is parsed once
and walked once (cached), and every question the validator asks (free names,
``vars.x`` keys, called functions, ``matching`` patterns, unknown filters) is
answered from that one walk: a directory of flows holds thousands of templates.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from engine.errors import ExpressionError
from engine.flow.expr import BUILTIN_NAMES, CACHE_SIZE, ENV, syntax_failure

_FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
_SCOPING = (nodes.For, nodes.Macro, nodes.CallBlock)


@dataclass
class Analysis:
    """What one expression or template refers to."""

    error: ExpressionError | None = None
    loaded: set[str] = field(default_factory=set)
    declared: set[str] = field(default_factory=set)
    #: root name -> keys read on it (``vars.a``, ``vars['b']``, ``vars.get('c')``)
    keys: dict[str, set[str]] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    #: function name -> literal first arguments (``business_hours('support')``)
    literal_args: dict[str, list[str]] = field(default_factory=dict)
    patterns: list[str] = field(default_factory=list)


def _parse(source: str, template: bool) -> nodes.Template:
    try:
        if template:
            return ENV.parse(source)
        # Same steps as Environment.compile_expression, stopping before code generation.
        parser = Parser(ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
        tree = nodes.Template([nodes.Output([expr], lineno=1)], lineno=1)
        tree.set_environment(ENV)
        return tree
    except TemplateSyntaxError as exc:
        raise syntax_failure(exc, source, "template" if template else "expression") from None


def _root(node: nodes.Node) -> str | None:
    return node.name if isinstance(node, nodes.Name) and node.ctx == "load" else None


def _const_str(node: nodes.Node | None) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _unknown(node: nodes.Filter | nodes.Test, source: str) -> ExpressionError | None:
    known = ENV.filters if isinstance(node, nodes.Filter) else ENV.tests
    if node.name in known:
        return None
    kind = "filter" if isinstance(node, nodes.Filter) else "test"
    guess = difflib.get_close_matches(node.name, list(known), n=1)
    also = f" (did you mean {guess[0]!r}?)" if guess else ""
    return ExpressionError(f"no {kind} named {node.name!r}{also}", source=source, line=node.lineno)


@lru_cache(maxsize=CACHE_SIZE)
def analyse(source: str, template: bool) -> Analysis:
    """Parse and walk ``source`` once; syntax problems land in ``error``."""
    result = Analysis()
    try:
        tree = _parse(source, template)
    except ExpressionError as exc:
        result.error = exc
        return result
    methods: set[int] = set()  # `vars.items()` is a method call, not a key read
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        stack.extend(reversed(list(node.iter_child_nodes())))  # source order
        if isinstance(node, nodes.Name):
            (result.loaded if node.ctx == "load" else result.declared).add(node.name)
        elif isinstance(node, nodes.Call):
            if isinstance(node.node, nodes.Name):
                result.functions.add(node.node.name)
                literal = _const_str(node.args[0] if node.args else None)
                if literal is not None:
                    result.literal_args.setdefault(node.node.name, []).append(literal)
            elif isinstance(node.node, nodes.Getattr) and (root := _root(node.node.node)):
                methods.add(id(node.node))
                key = _const_str(node.args[0] if node.args else None)
                if node.node.attr == "get" and key is not None:
                    result.keys.setdefault(root, set()).add(key)
        elif isinstance(node, nodes.Getattr) and (root := _root(node.node)) and id(node) not in methods:
            result.keys.setdefault(root, set()).add(node.attr)
        elif isinstance(node, nodes.Getitem) and (root := _root(node.node)):
            key = _const_str(node.arg)
            if key is not None:
                result.keys.setdefault(root, set()).add(key)
        if isinstance(node, (nodes.Filter, nodes.Test)) and result.error is None:
            # Jinja defers unknown filters/tests inside `{% if %}` to run time; find them now.
            result.error = _unknown(node, source)
            if isinstance(node, nodes.Test) and node.name == "matching":
                pattern = _const_str(node.args[0] if node.args else None)
                if pattern is not None:
                    result.patterns.append(pattern)
        elif isinstance(node, _FORBIDDEN) and result.error is None:
            message = "flows cannot include, import or extend templates"
            result.error = ExpressionError(message, source=source, line=node.lineno)
        elif isinstance(node, _SCOPING):
            result.declared |= {"loop", "caller", "varargs", "kwargs"}
    return result


def syntax_error(source: str, *, template: bool) -> ExpressionError | None:
    """Why ``source`` cannot run (syntax, unknown filter/test, include...), or None."""
    return analyse(source, template).error


def referenced_names(source: str, *, template: bool) -> set[str]:
    """Free top-level names the scope must supply (Jinja globals such as ``range`` excluded).

    A name the template assigns (``{% set %}``, ``{% for %}``) is local wherever used.
    """
    found = analyse(source, template)
    return found.loaded - found.declared - BUILTIN_NAMES


def referenced_attributes(source: str, *, template: bool, root: str) -> set[str]:
    """Keys read directly on ``root``: ``vars.a``, ``vars['b']``, ``vars.get('c')`` -> {a, b, c}."""
    return set(analyse(source, template).keys.get(root, set()))


def called_functions(source: str, *, template: bool) -> set[str]:
    """Names of top-level functions called, e.g. ``{"secret", "transcript"}``."""
    return set(analyse(source, template).functions)


def literal_arguments(source: str, *, template: bool, function: str) -> list[str]:
    """Literal first arguments given to ``function``: ``business_hours('support')`` -> ``['support']``."""
    return list(analyse(source, template).literal_args.get(function, []))


def regex_literals(source: str, *, template: bool) -> list[str]:
    """String constants given to the ``matching`` test."""
    return list(analyse(source, template).patterns)
