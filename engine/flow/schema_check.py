"""Schema layer of validation: JSON Schema errors turned into located diagnostics.

jsonschema reports every failed alternative of every ``anyOf``; a person wants one
message per place. We take ``best_match`` of each top-level error, keep the first
per location, and rewrite the message in terms of the flow (``step 'greet'``, not
``$.steps.greet``) with a did-you-mean for misspelt keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from engine.errors import Diagnostic
from engine.flow.codes import make
from engine.flow.load import LoadedDocument, Path, json_path
from engine.resources import load_schema

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_DURATION_HINT = "(ms|s|m|h|d)"


class SchemaCheck:
    """One JSON Schema used two ways: a compiled yes/no, then details when the answer is no.

    jsonschema-rs answers "valid?" about a hundred times faster than jsonschema;
    most documents are valid, so jsonschema (imported only then) walks just the
    ones that need messages. Both implement Draft 2020-12 on the same schema.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    @cached_property
    def _fast(self) -> Any:
        return jsonschema_rs.validator_for(self.schema)

    @cached_property
    def detailed(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator  # noqa: PLC0415 - only for invalid documents

        return Draft202012Validator(self.schema)

    def is_valid(self, data: Any) -> bool:
        valid: bool = self._fast.is_valid(data)
        return valid

    def iter_errors(self, data: Any) -> Iterator[ValidationError]:
        return self.detailed.iter_errors(data)


@cache
def schema_check(name: str, definition: str | None = None) -> SchemaCheck:
    """A schema file, or one of its ``$defs`` as the root (``testFile``, ``mock``)."""
    schema = load_schema(name)
    if definition is not None:
        schema = {k: v for k, v in schema.items() if k in ("$schema", "$id", "$defs")}
        schema["$ref"] = f"#/$defs/{definition}"
    return SchemaCheck(schema)


def flow_validator() -> SchemaCheck:
    return schema_check("flow.schema.json")


def test_file_validator() -> SchemaCheck:
    return schema_check("flow.schema.json", "testFile")


def settings_validator() -> SchemaCheck:
    return schema_check("settings.schema.json")


def describe(path: Path) -> str:
    """A person's name for a place in a flow: ``step 'refund', field 'ask'``."""
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "steps":
        where = f"step {parts[1]!r}"
        rest = parts[2:]
    elif len(parts) >= 2 and parts[0] == "ai":
        where = f"AI chain {parts[1]!r}"
        rest = parts[2:]
    elif parts and parts[0] == "tests" and len(parts) >= 2:
        where = f"test #{int(parts[1]) + 1}" if isinstance(parts[1], int) else "tests"
        rest = parts[2:]
    elif parts:
        where = f"{parts[0]!r}"
        rest = parts[1:]
    else:
        return "the flow"
    if rest:
        where += ", at " + ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in rest)
    return where


def _type_name(value: Any) -> str:
    if value is None:
        return "empty"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _expected(schema_type: Any) -> str:
    names = {
        "string": "text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "array": "a list",
        "object": "a mapping",
        "null": "empty",
    }
    types = schema_type if isinstance(schema_type, list) else [schema_type]
    return " or ".join(names.get(t, str(t)) for t in types)


def _unknown_keys(error: ValidationError) -> list[str]:
    allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
    patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [key for key in instance if key not in allowed and not any(re.search(p, key) for p in patterns)]


def _diagnose(error: ValidationError, doc: LoadedDocument) -> list[Diagnostic]:
    path: Path = tuple(error.absolute_path)
    where = describe(path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}

    def at(code: str, message: str, target: Path, *, key: bool = False, hint: str | None = None) -> Diagnostic:
        pos = doc.position(target, key=key)
        return make(code, message, file=doc.file, line=pos.line, column=pos.column, path=json_path(target), hint=hint)

    if keyword == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in _unknown_keys(error):
            guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else f"allowed here: {', '.join(allowed)}"
            out.append(at("FD111", f"unknown key {key!r} in {where}", (*path, key), key=True, hint=hint))
        return out
    if keyword == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else str(error.validator_value)
        return [at("FD112", f"{where} needs the key {name!r}", path, key=True)]
    if keyword == "type":
        message = f"{where} must be {_expected(error.validator_value)}, not {_type_name(error.instance)}"
        return [at("FD110", message, path)]
    if keyword == "pattern" and _DURATION_HINT in str(error.validator_value):
        message = f"{where}: {error.instance!r} is not a duration"
        return [at("FD114", message, path)]
    if keyword in {"pattern", "propertyNames"}:
        value = error.instance
        if keyword == "propertyNames" and isinstance(error.instance, dict):
            return [at("FD116", f"{where}: invalid name ({error.message})", path, key=True)]
        desc = schema.get("description", "")
        message = (
            f"{where}: {value!r} is not a valid name"
            if "name" in desc.lower() or "id" in desc.lower()
            else (f"{where}: {value!r} does not match the expected form")
        )
        return [at("FD116", message, path, hint=f"expected the form {error.validator_value}")]
    if keyword in ("enum", "const"):
        raw_options: Any = error.validator_value
        options: list[Any] = list(raw_options) if keyword == "enum" else [raw_options]
        guess = difflib.get_close_matches(str(error.instance), [str(o) for o in options], n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else "allowed: " + ", ".join(map(str, options))
        return [at("FD113", f"{where}: {error.instance!r} is not allowed", path, hint=hint)]
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [at("FD113", f"{where}: {error.message}", path)]
    if keyword in ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"):
        return [at("FD113", f"{where}: {error.message}", path)]
    return [at("FD119", f"{where}: {error.message}", path)]


def _relevance_order(errors: Iterable[ValidationError]) -> list[ValidationError]:
    from jsonschema.exceptions import best_match  # noqa: PLC0415 - only for invalid documents

    chosen: list[ValidationError] = []
    for error in errors:
        best = best_match([error])
        chosen.append(best if best is not None else error)
    chosen.sort(key=lambda e: [str(p) for p in e.absolute_path])
    return chosen


def schema_diagnostics(doc: LoadedDocument, check: SchemaCheck) -> list[Diagnostic]:
    """One diagnostic per failing location, in document order."""
    if check.is_valid(doc.data):
        return []
    seen: set[str] = set()
    out: list[Diagnostic] = []
    for error in _relevance_order(check.iter_errors(doc.data)):
        for diagnostic in _diagnose(error, doc):
            if diagnostic.path in seen and diagnostic.code != "FD111":
                continue
            seen.add(diagnostic.path)
            out.append(diagnostic)
    out.sort(key=lambda d: (d.line, d.column))
    return out
