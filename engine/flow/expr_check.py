"""Expression layer of validation: every condition and template in a flow, checked
without evaluating anything.

Finds syntax errors (with the line inside a multi-line template), names that are
not in scope, ``vars.x`` that nothing ever sets, ``secret()`` outside the places
that may hold secrets, and invalid regular expressions given to ``matching``.
Given the :class:`Installation`, also ``settings.x`` and ``business_hours('x')``
that its settings do not define.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.errors import Diagnostic
from engine.flow import expr, expr_static
from engine.flow.codes import make
from engine.flow.installation import Installation
from engine.flow.load import LoadedDocument, Path, json_path
from engine.flow.semantics import did_you_mean

#: Jinja's own globals, usable in any expression.
_JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "true", "false", "none"})


@dataclass(frozen=True, slots=True)
class Site:
    """One expression or template written in a flow file."""

    path: Path
    source: str
    template: bool
    secrets_allowed: bool = False


def _templates_in(value: Any, path: Path, *, secrets: bool) -> Iterator[Site]:
    if isinstance(value, str):
        yield Site(path, value, True, secrets)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _templates_in(item, (*path, key), secrets=secrets)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _templates_in(item, (*path, i), secrets=secrets)


def _set_sites(mapping: dict[str, Any], path: Path) -> Iterator[Site]:
    for var, value in mapping.items():
        if isinstance(value, str):
            yield Site((*path, var), value, False)


def sites(data: dict[str, Any]) -> Iterator[Site]:
    """Every expression (bare) and template in a validated flow document."""
    if isinstance(data.get("when"), str):
        yield Site(("when",), data["when"], False)
    for name, chain in (data.get("ai") or {}).items():
        if isinstance(chain.get("system"), str):
            yield Site(("ai", name, "system"), chain["system"], True)
        for i, provider in enumerate(chain.get("providers") or []):
            if "params" in provider:
                yield from _templates_in(provider["params"], ("ai", name, "providers", i, "params"), secrets=True)
    # Pipeline stages' replies are plain text (processors send them as written): not templates.
    for name, step in (data.get("steps") or {}).items():
        base: Path = ("steps", name)
        for key in ("say", "ask", "retry_prompt"):
            if isinstance(step.get(key), str):
                yield Site((*base, key), step[key], True)
        csat = step.get("csat")
        if isinstance(csat, dict):
            for key in ("question", "thanks"):
                if isinstance(csat.get(key), str):
                    yield Site((*base, "csat", key), csat[key], True)
        say = step.get("say")
        if isinstance(say, dict):
            for key in ("text", "image"):
                if isinstance(say.get(key), str):
                    yield Site((*base, "say", key), say[key], True)
            for i, param in enumerate(say.get("params") or []):
                if isinstance(param, str):
                    yield Site((*base, "say", "params", i), param, True)
        if isinstance(step.get("expect"), str):
            yield Site((*base, "expect"), step["expect"], False)
        if isinstance(step.get("set"), dict):
            yield from _set_sites(step["set"], (*base, "set"))
        for i, case in enumerate(step.get("switch") or []):
            if isinstance(case, dict) and isinstance(case.get("if"), str):
                yield Site((*base, "switch", i, "if"), case["if"], False)
        classify = step.get("classify")
        if isinstance(classify, dict) and isinstance(classify.get("text"), str):
            yield Site((*base, "classify", "text"), classify["text"], False)
        http = step.get("http")
        if isinstance(http, dict):
            for key in ("url", "body", "headers", "query", "json"):
                if key in http:
                    yield from _templates_in(http[key], (*base, "http", key), secrets=True)
        handoff = step.get("handoff")
        if isinstance(handoff, dict) and isinstance(handoff.get("note"), str):
            yield Site((*base, "handoff", "note"), handoff["note"], True)
        for jump in ("call", "goto_flow"):
            value = step.get(jump)
            if isinstance(value, dict) and isinstance(value.get("with"), dict):
                yield from _set_sites(value["with"], (*base, jump, "with"))


def assigned_vars(data: dict[str, Any]) -> set[str]:
    """Variables a flow declares or sets somewhere."""
    names = set(data.get("vars") or {})
    for step in (data.get("steps") or {}).values():
        if isinstance(step.get("save_as"), str):
            names.add(step["save_as"])
        if isinstance(step.get("set"), dict):
            names.update(step["set"])
    return names


class ExpressionChecker:
    """Checks every :class:`Site` of a document."""

    def __init__(self, doc: LoadedDocument, installation: Installation | None = None) -> None:
        self.doc = doc
        self.installation = installation
        # Sub-flows declare the inputs they receive through `with:` under `vars:`.
        self.assigned = assigned_vars(doc.data)
        self.lines = doc.text.splitlines()
        self.out: list[Diagnostic] = []

    def report(
        self, site: Site, code: str, message: str, *, at: tuple[int, int] | None = None, hint: str | None = None
    ) -> None:
        """Report at the site's value, or at ``at`` (line, column) inside it."""
        pos = self.doc.position(site.path)
        line, column = at or (pos.line, pos.column)
        self.out.append(
            make(code, message, file=self.doc.file, line=line, column=column, path=json_path(site.path), hint=hint)
        )

    def error_position(self, site: Site, error_line: int) -> tuple[int, int] | None:
        """Where in the file Jinja's error at line ``error_line`` of a multi-line value is.

        YAML folds `>` blocks and multi-line quoted text into one line, so Jinja's
        line number is meaningless there; Jinja ignores newlines inside tags, so the
        unfolded lines give the same error at its written line. None for a one-line
        value: the value's own position is the place.
        """
        pos = self.doc.position(site.path)
        block = _block_scalar(self.lines, pos.line, pos.column)
        if block is None and "\n" not in site.source:
            return None
        first = pos.line
        if block is not None:
            first += 1  # a block scalar's text starts on the line after `|` or `>`
            unfolded = expr_static.syntax_error(block, template=site.template)
            error_line = unfolded.line if unfolded is not None and unfolded.line else error_line
        line = min(first + error_line - 1, len(self.lines))
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return line, len(text) - len(text.lstrip()) + 1

    def run(self) -> list[Diagnostic]:
        for site in sites(self.doc.data):
            self.check(site)
        return self.out

    def check(self, site: Site) -> None:
        kind = "template" if site.template else "expression"
        error = expr_static.syntax_error(site.source, template=site.template)
        if error is not None:
            code = "FD404" if site.template else "FD401"
            self.report(site, code, str(error), at=self.error_position(site, error.line or 1))
            return
        names = expr_static.referenced_names(site.source, template=site.template)
        for name in sorted(names - expr.SCOPE_NAMES - _JINJA_GLOBALS):
            self.report(
                site,
                "FD402",
                f"{name!r} is not a name flows know in {kind} {_short(site.source)}",
                hint=did_you_mean(name, expr.SCOPE_NAMES) or None,
            )
        if "secret" in expr_static.called_functions(site.source, template=site.template) and not site.secrets_allowed:
            self.report(site, "FD403", f"secret() is used in {_short(site.source)}, outside http/AI config")
        for pattern in expr_static.regex_literals(site.source, template=site.template):
            try:
                re.compile(pattern)
            except re.error as exc:
                self.report(site, "FD405", f"invalid regular expression {pattern!r}: {exc}")
                continue
            control = next((c for c in pattern if ord(c) < 0x20 and c not in "\t\n"), None)
            if control is not None:
                # Jinja turns '\b' in a string literal into a backspace: the pattern
                # would silently never match.
                self.report(
                    site,
                    "FD405",
                    f"regular expression {pattern!r} contains the control character {control!r}",
                    hint="Jinja unescapes string literals: write \\\\b for a word boundary, or avoid backslashes",
                )
        for var in sorted(expr_static.referenced_attributes(site.source, template=site.template, root="vars")):
            if var not in self.assigned:
                self.report(
                    site,
                    "FD208",
                    f"vars.{var} is never set in this flow",
                    hint=did_you_mean(var, self.assigned) or None,
                )
        if self.installation is not None:
            self.check_installation(site, self.installation)

    def check_installation(self, site: Site, installation: Installation) -> None:
        """Settings names and calendars the installation's settings file must define."""
        names = installation.settings_names
        for name in sorted(expr_static.referenced_attributes(site.source, template=site.template, root="settings")):
            if name in names:
                continue
            if name == "values":
                example = min(names - {"brand"}, default="name")
                hint = f"the keys under `values:` are read directly, e.g. settings.{example}"
            else:
                hint = did_you_mean(name, names) or f"add `{name}:` under `values:` in {installation.source}"
            self.report(
                site,
                "FD213",
                f"settings.{name} is not defined in {installation.source} (known: {installation.known(names)})",
                hint=hint,
            )
        calendars = installation.calendars
        for name in expr_static.literal_arguments(site.source, template=site.template, function="business_hours"):
            if name in calendars:
                continue
            self.report(
                site,
                "FD214",
                f"business_hours({name!r}): {installation.source} has no such calendar"
                f" (known: {installation.known(calendars)})",
                hint=did_you_mean(name, calendars) or f"add `{name}:` under `business_hours:` in {installation.source}",
            )


def _block_scalar(lines: list[str], line: int, column: int) -> str | None:
    """The written lines of a `|`/`>` block scalar whose indicator is at (line, column)."""
    head = lines[line - 1][column - 1 :] if 0 < line <= len(lines) else ""
    if head[:1] not in ("|", ">"):
        return None
    body: list[str] = []
    indent: int | None = None
    for text in lines[line:]:
        if not text.strip():
            body.append("")
            continue
        width = len(text) - len(text.lstrip(" "))
        indent = width if indent is None else indent
        if width < indent:
            break
        body.append(text[indent:])
    return "\n".join(body).rstrip("\n")


def _short(source: str) -> str:
    text = " ".join(source.split())
    return repr(text if len(text) <= 60 else text[:57] + "...")
