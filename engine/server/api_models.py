"""The typed bodies the API answers with, and what makes their OpenAPI schemas self-describing.

Every success response of ``/api`` (and of the health endpoints) is an
:class:`ApiModel`: a msgspec Struct whose fields are exactly the JSON members the
client gets, in that order. msgspec rather than dataclasses because a member can
be named like a Python keyword (``from`` in a diff) and can be left out of the
JSON altogether (``msgspec.UNSET``), which a dataclass cannot say.

Litestar titles a component by its class name but does not describe it;
:class:`DescribedModels`, an OpenAPI schema plugin of the app, gives each model of
the server its docstring as the component's ``description`` (the request bodies
and :class:`engine.server.problems.ProblemDetails` are dataclasses and get it too).
Fields are described with :func:`described`.

The models of each area live beside this module: ``api_models_flows``,
``api_models_conversations``, ``api_models_settings``.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

# Litestar's own schema builders for Structs and dataclasses: DescribedModels wraps
# them and adds the description (they are not re-exported publicly).
from litestar._openapi.schema_generation.plugins.dataclass import DataclassSchemaPlugin
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.plugins import OpenAPISchemaPlugin

from engine.errors import Diagnostic, Severity

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


def described(text: str) -> msgspec.Meta:
    """A field's description in the OpenAPI document: ``name: Annotated[str, described("...")]``."""
    return msgspec.Meta(description=text)


class ApiModel(msgspec.Struct):
    """Base of the response models: each is encoded member by member, in field order."""


def _written_docstring(model: type) -> str | None:
    doc = model.__doc__
    # A dataclass without a docstring gets its signature as one ("SaveBody(source: str, ...)").
    if not doc or (dataclasses.is_dataclass(model) and doc.startswith(f"{model.__name__}(")):
        return None
    return inspect.cleandoc(doc)


class DescribedModels(OpenAPISchemaPlugin):
    """Litestar's Struct and dataclass schemas, described by the model's docstring (server models only)."""

    def __init__(self) -> None:
        self._builders: tuple[OpenAPISchemaPlugin, ...] = (StructSchemaPlugin(), DataclassSchemaPlugin())

    def _builder_for(self, field_definition: FieldDefinition) -> OpenAPISchemaPlugin | None:
        model = field_definition.type_
        if not isinstance(model, type) or not model.__module__.startswith("engine.server."):
            return None
        return next((b for b in self._builders if b.is_plugin_supported_field(field_definition)), None)

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return self._builder_for(field_definition) is not None

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        builder = self._builder_for(field_definition)
        assert builder is not None  # only called for the fields is_plugin_supported_field accepted
        schema = builder.to_openapi_schema(field_definition, schema_creator)
        schema.description = _written_docstring(field_definition.type_)
        return schema


# -- shared by several areas ---------------------------------------------------------------


class DiagnosticView(ApiModel):
    """One finding about a flow file, located at `file:line:column` (what `flowdesk validate` prints)."""

    code: Annotated[str, described("stable code, e.g. FD201")]
    severity: Severity
    message: str
    hint: Annotated[str, described("how to fix it; empty when there is nothing to add")]
    file: str
    line: Annotated[int, described("1-based")]
    column: Annotated[int, described("1-based")]
    path: Annotated[str, described("where in the document, as a JSON path ($ is the whole file)")]

    @classmethod
    def of(cls, diagnostic: Diagnostic) -> DiagnosticView:
        return cls(**diagnostic_members(diagnostic))


def diagnostic_members(diagnostic: Diagnostic) -> dict[str, Any]:
    """A diagnostic's members, as every view of one names them."""
    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "hint": diagnostic.hint,
        "file": diagnostic.file,
        "line": diagnostic.line,
        "column": diagnostic.column,
        "path": diagnostic.path,
    }


def diagnostic_views(diagnostics: list[Diagnostic]) -> list[DiagnosticView]:
    return [DiagnosticView.of(d) for d in diagnostics]


class Health(ApiModel):
    """Liveness: the process answers."""

    status: Literal["ok"]


class Readiness(ApiModel):
    """Readiness: every dependency the node needs answers (a 503 problem names the ones that do not)."""

    status: Literal["ready"]
    checks: Annotated[dict[str, str], described("each dependency (database, temporal) and `ok`")]
