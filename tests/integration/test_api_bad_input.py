"""Bad input a probe of the running server found: each is a clear 4xx, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.integration.server_support import running_node

BEYOND_64_BITS = str(2**63)
DEEP_JSON = b"[" * 100_000


def _problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["detail"])


async def test_integers_beyond_64_bits_are_refused_with_the_bound(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api:
        listed = await api.get("/api/conversations", params={"offset": BEYOND_64_BITS})
        assert "offset" in _problem(listed, 400)
        messages = await api.get("/api/conversations/x/messages", params={"after": BEYOND_64_BITS})
        assert "after" in _problem(messages, 400)


async def test_deeply_nested_or_non_json_bodies_are_refused_on_every_json_endpoint(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api:
        endpoints = [
            ("POST", "/api/flows/validate"),
            ("PUT", "/api/flows/echo"),
            ("POST", "/api/flows/echo/rollback"),
            ("POST", "/api/conversations/x/close"),
        ]
        for method, path in endpoints:
            json_type = {"content-type": "application/json"}
            deep = await api.request(method, path, content=DEEP_JSON, headers=json_type)
            assert "deeper than 64" in _problem(deep, 400), (method, path)
            nested_value = b'{"source": ' + b"[" * 65 + b"]" * 65 + b"}"
            assert "deeper than 64" in _problem(
                await api.request(method, path, content=nested_value, headers=json_type), 400
            )
            text = await api.request(method, path, content=b'{"source": "x"}', headers={"content-type": "text/plain"})
            assert "application/json" in _problem(text, 415), (method, path)
        # A brace inside a string nests nothing.
        braces = await api.post("/api/flows/validate", json={"source": "[" * 1000})
        assert braces.status_code == 200 and braces.json()["valid"] is False


async def test_closing_with_an_undocumented_status_is_refused(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, node.api() as api:
        bogus = await api.post("/api/conversations/x/close", json={"status": "bogus"})
        detail = _problem(bogus, 422)
        assert "status" in detail and "resolved" in detail


async def test_odd_static_paths_are_4xx_without_a_token(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, httpx.AsyncClient(base_url=node.url) as anonymous:
        assert (await anonymous.get("/ui/widget/widget.js")).status_code == 200
        assert "control character" in _problem(await anonymous.get("/ui/widget/widget.js%00.html"), 400)
        _problem(await anonymous.get("/ui/widget/%0aforged"), 400)
        _problem(await anonymous.get("/ui/" + "a" * 300), 404)
        _problem(await anonymous.get("/ui/" + "a/" * 600 + "x"), 404)
        _problem(await anonymous.get("/ui/%2e%2e/%2e%2e/pyproject.toml"), 404)


async def test_the_openapi_document_describes_problems_ids_and_what_a_save_accepts(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, httpx.AsyncClient(base_url=node.url) as anonymous:
        document = (await anonymous.get("/schema/openapi.json")).json()
    operations = [op for path, item in document["paths"].items() if path.startswith("/api/") for op in item.values()]
    assert len({op["operationId"] for op in operations}) == len(operations) >= 13
    for operation in operations:
        assert "401" in operation["responses"], operation["operationId"]
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ProblemDetails"}, (operation["operationId"], status)
    save = document["paths"]["/api/flows/{name}"]["put"]
    assert {"413", "415", "422"} <= set(save["responses"])
    body = document["components"]["schemas"]["SaveBody"]["properties"]["author"]
    assert body["minLength"] == 1 and body["pattern"] == "\\S"
