"""The API's OpenAPI document is a contract a typed client can be generated from.

Every ``/api`` operation has a camelCase ``operationId``, a success response whose
schema names its members, and a problem+json schema for each error status; every
schema component says what it is. A handler returning ``dict[str, Any]`` again, or
added without an operation id, fails here with the operation's name.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.unit.server.openapi_support import openapi_document

#: Litestar makes up an id for a handler without one ("ApiFlowsNameGetFlow"): a made-up
#: id is PascalCase, so camelCase is also what tells a chosen id from a missing one.
CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")
PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
METHODS = ("get", "put", "post", "delete", "patch")


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(``METHOD /path``, operation) of every operation under /api."""
    return [
        (f"{method.upper()} {path}", spec)
        for path, item in sorted(document["paths"].items())
        if path.startswith("/api/")
        for method, spec in item.items()
        if method in METHODS
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _untyped(document: dict[str, Any], schema: dict[str, Any] | None) -> str | None:
    """Why ``schema`` does not describe its members, or None when it does."""
    if not schema:
        return "has no schema"
    target = _resolve(document, schema)
    if target.get("type") != "object":
        return f"is not an object schema: {schema}"
    if not target.get("properties"):
        return f"names no members (a bare object): {schema}"
    return None


def contract_breaches(document: dict[str, Any]) -> list[str]:
    """Every way an /api operation falls short of the contract, each naming the operation."""
    breaches = []
    for where, operation in _operations(document):
        operation_id = operation.get("operationId")
        name = f"{operation_id or '(no operationId)'} ({where})"
        if not operation_id:
            breaches.append(f"{name}: no operationId")
        elif not CAMEL_CASE.fullmatch(operation_id):
            breaches.append(f"{name}: operationId is not camelCase")
        responses = operation.get("responses", {})
        successes = [status for status in responses if status.startswith("2")]
        if not successes:
            breaches.append(f"{name}: no 2xx response")
        for status in successes:
            content = responses[status].get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if (why := _untyped(document, schema)) is not None:
                breaches.append(f"{name}: {status} response {why}")
        for status, response in responses.items():
            if status[0] in "45":
                schema = response.get("content", {}).get("application/problem+json", {}).get("schema")
                if schema != PROBLEM:
                    breaches.append(f"{name}: {status} has no application/problem+json ProblemDetails schema")
    return breaches


def test_every_api_operation_has_an_id_a_typed_answer_and_problem_schemas() -> None:
    document = openapi_document()
    assert len(_operations(document)) >= 14
    breaches = contract_breaches(document)
    assert not breaches, "\n".join(breaches)


def test_an_untyped_answer_or_a_missing_id_is_named() -> None:
    document = copy.deepcopy(openapi_document())
    listing = document["paths"]["/api/flows"]["get"]
    del listing["operationId"]
    listing["responses"]["200"]["content"]["application/json"]["schema"] = {"type": "object"}
    saving = document["paths"]["/api/flows/{name}"]["put"]
    saving["responses"]["422"]["content"] = {"application/json": {"schema": {"type": "object"}}}
    document["paths"]["/api/settings"]["get"]["operationId"] = "get_settings"
    assert contract_breaches(document) == [
        "(no operationId) (GET /api/flows): no operationId",
        "(no operationId) (GET /api/flows): 200 response names no members (a bare object): {'type': 'object'}",
        "saveFlow (PUT /api/flows/{name}): 422 has no application/problem+json ProblemDetails schema",
        "get_settings (GET /api/settings): operationId is not camelCase",
    ]


def test_every_schema_component_is_described() -> None:
    schemas = openapi_document()["components"]["schemas"]
    undescribed = sorted(name for name, schema in schemas.items() if not schema.get("description"))
    assert not undescribed, f"schema components without a description: {undescribed}"


def test_every_operation_with_a_json_body_documents_the_body_problems() -> None:
    # ApiRequest answers 415 to a body that is not JSON and 400 to one nested too deep;
    # a body over the size limit is a 413.
    with_body = [(where, op) for where, op in _operations(openapi_document()) if "requestBody" in op]
    assert len(with_body) >= 4  # validate, save, roll back, close
    for where, operation in with_body:
        assert {"400", "413", "415"} <= set(operation["responses"]), where


def test_the_operation_ids_the_console_is_written_against() -> None:
    ids = {op["operationId"] for _where, op in _operations(openapi_document())}
    assert {
        "listFlows",
        "getFlow",
        "validateFlow",
        "saveFlow",
        "listFlowRevisions",
        "getFlowRevision",
        "diffFlowRevisions",
        "rollBackFlow",
        "listConversations",
        "getConversation",
        "getTranscript",
        "getConversationState",
        "closeConversation",
        "getSettings",
    } <= ids
