"""The catalogue of diagnostic codes: stable ids, a title and a one-line fix hint.

Codes never change meaning once released; tools and people search for them.
FD1xx syntax and schema, FD2xx references, FD3xx graph, FD4xx expressions.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import Diagnostic, Severity


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    severity: Severity
    title: str
    hint: str


_E, _W = Severity.ERROR, Severity.WARNING

CODES: dict[str, Code] = {
    c.code: c
    for c in [
        Code("FD100", _E, "file cannot be read", "save the file as UTF-8 text"),
        Code("FD101", _E, "YAML syntax error", "check indentation, colons and quotes around this spot"),
        Code("FD102", _E, "duplicate key", "remove or rename one of the two keys; YAML keeps only the last"),
        Code("FD103", _E, "empty flow file", "a flow needs at least `flow:` and `steps:`"),
        Code("FD104", _E, "file too large", "split the flow into several files joined with `call`/`goto_flow`"),
        Code("FD105", _E, "document too complex", "avoid deeply nested or alias-expanded structures"),
        Code("FD110", _E, "wrong type", "use the type the schema expects here"),
        Code("FD111", _E, "unknown key", "remove the key or fix its spelling"),
        Code("FD112", _E, "missing required key", "add the missing key"),
        Code("FD113", _E, "invalid value", "use one of the allowed values"),
        Code("FD114", _E, "invalid duration", "write durations like 500ms, 8s, 30m, 2h or 1d"),
        Code("FD115", _E, "step kind is ambiguous or missing", "give each step exactly one action"),
        Code("FD116", _E, "invalid name", "names use lower-case letters, digits, '-' and '_'"),
        Code("FD119", _E, "schema violation", "see docs/flows.md for this construct"),
        Code("FD120", _E, "key not allowed on this step kind", "move the key to a step of the right kind or remove it"),
        Code("FD201", _E, "unknown step", "point to a step defined under `steps:`"),
        Code("FD202", _E, "unknown AI chain", "define the chain under `ai:` or fix the name"),
        Code("FD203", _E, "unknown AI provider", "use a built-in provider or a `module:attr` reference"),
        Code("FD204", _E, "unknown processor", "use a built-in processor or a `module:Class` reference"),
        Code("FD205", _E, "unknown channel", "use a known channel name or '*'"),
        Code("FD206", _W, "unknown flow", "make sure a flow with this id is deployed"),
        Code("FD207", _E, "duplicate flow id", "give every flow file a unique `flow:` id"),
        Code("FD208", _W, "variable is never set", "declare it under `vars:` or set it with `save_as`/`set`"),
        Code("FD210", _W, "unknown intent in routes", "route only intents listed under `classify.intents`"),
        Code("FD211", _E, "test refers to an unknown step", "mock only `ai`/`http` steps that exist"),
        Code(
            "FD212",
            _E,
            "knowledge file cannot be used",
            "fix the path (relative to the flows directory) or the knowledge file it names",
        ),
        Code("FD213", _E, "unknown setting", "use `settings.brand` or a key under `values:` in flowdesk.yaml"),
        Code("FD214", _E, "unknown business-hours calendar", "name a calendar under `business_hours:` of the settings"),
        Code("FD215", _E, "unknown AI profile", "name a profile under `ai_profiles:` in flowdesk.yaml"),
        Code("FD216", _E, "unknown channel account", "configure the account under `channels.<kind>.accounts:`"),
        Code(
            "FD217",
            _W,
            "hand-off to a queue described nowhere",
            "describe it in flowdesk.yaml `queues:` or through the API",
        ),
        Code("FD301", _W, "unreachable step", "link to it with `next`/`goto`, or delete it"),
        Code("FD302", _E, "loop without a wait", "put a `wait: message`, `ask` or `handoff` inside the loop"),
        Code("FD303", _W, "failure path missing", "add `on_error:` so a failure does not end the conversation"),
        Code("FD304", _W, "step has no effect", "a `next:` on a step that ends is ignored"),
        Code(
            "FD305",
            _W,
            "hand-off timeout without `on_timeout`",
            "add `on_timeout:` naming the step that tells the customer what happens next",
        ),
        Code(
            "FD306",
            _W,
            "flows compete for the same channel",
            "give one flow a higher `priority:` or a `when:` guard",
        ),
        Code("FD401", _E, "expression syntax error", "fix the Jinja2 expression syntax"),
        Code(
            "FD402",
            _W,
            "unknown name in expression",
            "use one of: message, answer, contact, conversation, vars, settings, now, ai, http",
        ),
        Code("FD403", _E, "secret() not allowed here", "use secret() only inside `http:` or `ai:` chain config"),
        Code(
            "FD404",
            _E,
            "template syntax error",
            "fix the Jinja2 template: `{{ ... }}` for values, `{% ... %}` for logic",
        ),
        Code("FD405", _E, "invalid regular expression", "fix the pattern given to `matching`"),
    ]
}


def make(
    code: str,
    message: str,
    *,
    file: str,
    line: int,
    column: int,
    path: str = "$",
    hint: str | None = None,
    severity: Severity | None = None,
) -> Diagnostic:
    """Build a diagnostic for a catalogued code (the catalogue's hint unless given)."""
    entry = CODES[code]
    return Diagnostic(
        code=code,
        severity=severity or entry.severity,
        message=message,
        hint=entry.hint if hint is None else hint,
        file=file,
        line=line,
        column=column,
        path=path,
    )
