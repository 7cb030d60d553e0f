"""Write ``ui/shared/api.ts``: the TypeScript client of Flowdesk's JSON API, from the app's own OpenAPI document.

Run from the repository root::

    python ui/shared/generate_api_client.py          # rewrite ui/shared/api.ts
    python ui/shared/generate_api_client.py --check  # exit 1 if it is stale

The document is built in this process from :func:`engine.server.app.create_app`
(no server, no network, no database: the app is only described, never run), so
the client always matches the handlers' typed responses. Every schema component
becomes an exported type and every operation with a JSON response a typed async
function named by its ``operationId``. The output is deterministic (components
and operations sorted by name, members in the order the server sends them), so a
test can regenerate it in memory and compare (tests/unit/server/test_api_client_fresh.py).

Only the standard library and the project (with its dependencies) are used: the UI needs no Node
tooling to refresh its client.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script, only ui/shared/ is on the path

# The project's modules, importable now that the repository is on the path.
from litestar import Litestar  # noqa: E402

from engine.server.app import create_app  # noqa: E402
from engine.server.services import Services  # noqa: E402
from engine.settings import Settings  # noqa: E402

OUTPUT = REPO / "ui" / "shared" / "api.ts"
REGENERATE = "python ui/shared/generate_api_client.py"

#: Members, parameters and names TypeScript can write without quotes.
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_REF = "#/components/schemas/"


def app_without_services() -> Litestar:
    """The app ``flowdesk serve`` runs, with default settings, built without a store, Temporal or channels.

    It can be described and its static files served; a handler that needs the
    services would fail.
    """
    # What building the app reads: the store's count for the metrics, the channels'
    # own routes (none: a vendor's handshake is not the API), and the settings that
    # turn the demo order API on (off: it is not the API either).
    services = SimpleNamespace(
        store=SimpleNamespace(count_by_status=dict),
        channels={},
        settings=Settings.from_mapping({}, environ={}),
    )
    return create_app(cast(Services, services))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app, as ``/schema/openapi.json`` serves it."""
    document: dict[str, Any] = app_without_services().openapi_schema.to_schema()
    return document


# -- types ---------------------------------------------------------------------------------


def _name(ref: str) -> str:
    if not ref.startswith(_REF):
        raise ValueError(f"only references to components are supported, not {ref!r}")
    return ref.removeprefix(_REF)


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _union(members: list[str]) -> str:
    unique = list(dict.fromkeys(members))
    return " | ".join(unique) if unique else "never"


def ts_type(schema: dict[str, Any]) -> str:
    """The TypeScript type of a JSON Schema, for the subset Litestar writes."""
    if "$ref" in schema:
        return _name(schema["$ref"])
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return _union([_literal(v) for v in schema["enum"]])
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return _union([_wrapped(ts_type(s)) for s in schema[combinator]])
    if "allOf" in schema:
        return " & ".join(_wrapped(ts_type(s)) for s in schema["allOf"]) or "unknown"
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([ts_type({**schema, "type": k}) for k in kind])
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        return f"Array<{ts_type(schema.get('items', {}))}>"
    if kind == "object" or "properties" in schema:
        return _object_type(schema)
    return "unknown"


def _wrapped(text: str) -> str:
    """``text`` safe inside a union or intersection (an inline object type or a function needs no parens here)."""
    return f"({text})" if " | " in text or " & " in text else text


def _object_type(schema: dict[str, Any]) -> str:
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    if not properties:
        if extra is False:
            return "Record<string, never>"
        return f"Record<string, {ts_type(extra) if isinstance(extra, dict) and extra else 'unknown'}>"
    required = set(schema.get("required", []))
    members = [f"{_member(name)}{'' if name in required else '?'}: {ts_type(s)}" for name, s in properties.items()]
    return "{ " + "; ".join(members) + " }"


def _member(name: str) -> str:
    return name if _IDENTIFIER.fullmatch(name) else _literal(name)


def _doc(text: str | None, indent: str = "") -> list[str]:
    """A JSDoc comment of ``text`` (nothing when there is none)."""
    if not text:
        return []
    lines = text.replace("*/", "*\\/").strip().splitlines()
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in lines), f"{indent} */"]


def component(name: str, schema: dict[str, Any]) -> list[str]:
    """An exported interface for an object schema, an exported type alias for any other."""
    lines = _doc(schema.get("description"))
    properties = schema.get("properties")
    if schema.get("type") == "object" and properties:
        required = set(schema.get("required", []))
        lines.append(f"export interface {name} {{")
        for member, member_schema in properties.items():
            lines += _doc(member_schema.get("description"), "  ")
            optional = "" if member in required else "?"
            lines.append(f"  {_member(member)}{optional}: {ts_type(member_schema)};")
        lines.append("}")
    else:
        lines.append(f"export type {name} = {ts_type(schema)};")
    return lines


# -- operations ----------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _json_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    media = (content or {}).get("application/json")
    return None if media is None else media.get("schema", {})


def _success(operation: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The 2xx status and JSON schema of an operation, or None when it answers no JSON (metrics)."""
    for status, response in sorted(operation.get("responses", {}).items()):
        if status.startswith("2"):
            schema = _json_schema(response.get("content"))
            return (status, schema) if schema is not None else None
    return None


def _is_nullable(schema: dict[str, Any]) -> bool:
    return any(s.get("type") == "null" for s in schema.get("oneOf", schema.get("anyOf", [])))


def operation(path: str, method: str, spec: dict[str, Any]) -> list[str] | None:
    """One exported async function calling ``method path``; None for an operation without a JSON answer."""
    success = _success(spec)
    if success is None:
        return None
    _status, result_schema = success
    name = spec["operationId"]
    parameters = spec.get("parameters", [])
    path_params = [p for p in parameters if p["in"] == "path"]
    query_params = [p for p in parameters if p["in"] == "query"]

    arguments = [f"{_camel(p['name'])}: {ts_type(p.get('schema', {}))}" for p in path_params]
    call_options = []
    body = spec.get("requestBody")
    if body is not None:
        body_schema = _json_schema(body.get("content")) or {}
        optional = not body.get("required", False) or _is_nullable(body_schema)
        arguments.append(f"body{'?' if optional else ''}: {ts_type(body_schema)}")
        call_options.append("body")
    if query_params:
        members = [
            f"{_member(p['name'])}{'' if p.get('required') else '?'}: {ts_type(p.get('schema', {}))}"
            for p in query_params
        ]
        any_required = any(p.get("required") for p in query_params)
        arguments.append(f"query{'' if any_required else '?'}: {{ {'; '.join(members)} }}")
        call_options.append("query")

    url = re.sub(r"\{(\w+)\}", lambda m: f"${{encodeURIComponent({_camel(m.group(1))})}}", path)
    url_literal = f"`{url}`" if "${" in url else _literal(path)
    options = f", {{ {', '.join(call_options)} }}" if call_options else ""
    result = ts_type(result_schema) if result_schema else "unknown"

    summary = spec.get("summary")
    lines = _doc(f"{summary}.\n\n`{method.upper()} {path}`" if summary else f"`{method.upper()} {path}`")
    lines.append(f"export async function {name}({', '.join(arguments)}): Promise<{result}> {{")
    lines.append(f"  return request<{result}>({_literal(method.upper())}, {url_literal}{options});")
    lines.append("}")
    return lines


# -- the file ------------------------------------------------------------------------------

HEADER = f"""\
// Generated by ui/shared/generate_api_client.py from Flowdesk's OpenAPI document: do not edit.
// Regenerate from the repository root after changing the API: {REGENERATE}
"""

RUNTIME = """\
/** Where the API is and how to authenticate; set once with {@link configure}. */
export interface ApiConfig {
  /** Prefix of every request path: "" for the page's own origin, or e.g. "https://desk.example.com". */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>` (from `flowdesk token create`); null sends none. */
  token: string | null;
}

const config: ApiConfig = { baseUrl: "", token: null };

/** Change where requests go and how they authenticate; members left out keep their value. */
export function configure(options: Partial<ApiConfig>): void {
  Object.assign(config, options);
}

/** A non-2xx answer: the RFC 9457 problem details the server sent, with its status. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly problem: ProblemDetails;

  constructor(problem: ProblemDetails) {
    super(problem.detail);
    this.name = "ApiProblem";
    this.status = problem.status;
    this.problem = problem;
  }
}

type QueryValue = string | number | boolean | null | undefined;

interface RequestOptions {
  body?: unknown;
  query?: { [name: string]: QueryValue } | undefined;
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null) search.append(name, String(value));
  }
  const query = search.toString();
  const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
  if (config.token !== null) headers["Authorization"] = `Bearer ${config.token}`;
  const init: RequestInit = { method, headers, credentials: "same-origin" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(`${config.baseUrl}${path}${query ? `?${query}` : ""}`, init);
  if (!response.ok) throw new ApiProblem(await problemOf(response));
  return (await response.json()) as T;
}

/** The problem details of a failed response; made up from its status when the body is not one (a proxy's page). */
async function problemOf(response: Response): Promise<ProblemDetails> {
  const text = await response.text();
  if ((response.headers.get("Content-Type") ?? "").includes("json")) {
    try {
      const body: unknown = JSON.parse(text);
      if (typeof body === "object" && body !== null && "detail" in body) return body as ProblemDetails;
    } catch {
      // not JSON after all: described below
    }
  }
  const detail = text || response.statusText;
  return { type: "about:blank", title: response.statusText, status: response.status, detail };
}
"""


def render(document: dict[str, Any]) -> str:
    """The text of ``api.ts`` for ``document``."""
    schemas = document.get("components", {}).get("schemas", {})
    if "ProblemDetails" not in schemas:
        raise ValueError("the document has no ProblemDetails schema: the client's ApiProblem needs it")
    sections = [HEADER]
    sections += ["\n".join(component(name, schemas[name])) + "\n" for name in sorted(schemas)]
    sections.append(RUNTIME)
    operations = sorted(
        (spec["operationId"], path, method, spec)
        for path, item in document.get("paths", {}).items()
        for method, spec in item.items()
        if isinstance(spec, dict) and "operationId" in spec
    )
    for _id, path, method, spec in operations:
        lines = operation(path, method, spec)
        if lines is not None:
            sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if ui/shared/api.ts is not what it would be")
    args = parser.parse_args(argv)
    text = render(openapi_document())
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(REPO)} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
