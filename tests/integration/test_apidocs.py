"""The HTML API reference at /schema: public, served entirely by Flowdesk, rendered in a real browser."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Request, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from tests.integration.server_support import running_node


class _References(HTMLParser):
    """Every URL the page makes a browser load: script/img/iframe src, link href, <redoc spec-url>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "img": "src", "iframe": "src", "link": "href", "redoc": "spec-url"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _is_local_path(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and url.startswith("/")


async def test_the_api_reference_is_public_and_every_asset_comes_from_this_server(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, httpx.AsyncClient(base_url=node.url) as anonymous:
        page = await anonymous.get("/schema")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<title>Flowdesk API</title>" in page.text
        references = _References()
        references.feed(page.text)
        assert "/ui/apidocs/redoc.standalone.js" in references.urls
        assert "/schema/openapi.json" in references.urls
        for url in references.urls:
            assert _is_local_path(url), f"/schema loads {url} from another host"
            asset = await anonymous.get(url)
            assert asset.status_code == 200, f"{url}: {asset.status_code}"
        # The machine-readable description stays where tools expect it.
        assert (await anonymous.get("/schema/openapi.json")).json()["openapi"].startswith("3.1")


CHROMIUM_NAMES = ("chromium", "chromium-browser")


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[Browser]:
    executable = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if executable is None:
        # Fail, not skip: a browser test that silently does not run proves nothing.
        pytest.fail("Chromium is not installed: `apt-get install chromium` (Debian's package)", pytrace=False)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def test_the_api_reference_renders_the_operations_without_leaving_the_machine(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, browser: Browser
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        async with httpx.AsyncClient(base_url=node.url) as anonymous:
            spec = (await anonymous.get("/schema/openapi.json")).json()
        summaries = [op["summary"] for item in spec["paths"].values() for op in item.values() if "summary" in op]
        context = await browser.new_context()
        requested: list[str] = []

        def note(request: Request) -> None:
            requested.append(request.url)

        context.on("request", note)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(node.url + "/schema")
        # Redoc lists every operation in its menu; the API's own summaries appear there.
        menu = page.get_by_role("menu").first
        await expect(menu).to_be_visible(timeout=20_000)
        for summary in summaries[:5]:
            await expect(menu.get_by_text(summary, exact=True).first).to_be_attached()
        await expect(page.get_by_role("heading", name="Flowdesk API")).to_be_visible()
        await context.close()
        assert errors == []
        assert requested, "the browser made no request at all"
        elsewhere = [
            url for url in requested if urlsplit(url).hostname != "127.0.0.1" and urlsplit(url).scheme != "blob"
        ]
        assert elsewhere == [], f"/schema made the browser reach other hosts: {elsewhere}"
