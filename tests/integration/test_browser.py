"""The demo page in a real browser: Debian's Chromium, driven by Playwright, talks to a running node."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from tests.integration.server_support import running_node

#: Debian's package; Playwright's own browser downloads are not used (no network here).
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    # Fail, not skip: a browser test that silently does not run proves nothing (CI installs it).
    pytest.fail("Chromium is not installed: `apt-get install chromium` (Debian's package)", pytrace=False)


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def _send(page: Page, text: str) -> None:
    box = page.get_by_test_id("fd-input")
    await box.fill(text)
    await box.press("Enter")


async def test_a_visitor_chats_in_the_widget_on_the_demo_page(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, browser: Browser
) -> None:
    # A single node with its own Temporal server, as `flowdesk serve` runs by default.
    async with running_node(fx_dev_env, tmp_path, embedded=True) as node:
        page = await browser.new_page()
        await page.goto(node.url + "/")
        await expect(page.get_by_role("link", name="Demo Shop")).to_be_visible()
        launcher = page.get_by_test_id("fd-launcher")
        await expect(launcher).to_have_attribute("aria-label", "Open chat")
        await launcher.click()
        await expect(page.get_by_test_id("fd-panel")).to_be_visible()
        await expect(page.get_by_test_id("fd-status")).to_contain_text("Online")

        await _send(page, "hello from the browser")
        bot = page.locator('[data-testid="fd-message"][data-sender="bot"]')
        await expect(bot.last).to_contain_text("got hello from the browser")
        # Customer text is data: markup typed by a visitor is shown, not run.
        await _send(page, "<b>bold?</b>")
        await expect(bot.last).to_contain_text("got <b>bold?</b>")
        # Each reply stands below the message it answers, though on a single node it
        # reaches the page before that message's acknowledgement does.
        await expect(page.locator(".fd-msg--sending")).to_have_count(0)
        senders = await page.get_by_test_id("fd-message").evaluate_all("els => els.map(e => e.dataset.sender)")
        assert senders == ["customer", "bot", "customer", "bot"]

        # A reload shows the conversation again, from the server's history.
        await page.reload()
        await page.get_by_test_id("fd-launcher").click()
        messages = page.get_by_test_id("fd-message")
        await expect(messages).to_have_count(4)
        await expect(messages.nth(1)).to_contain_text("got hello from the browser")

        # Keyboard only: Escape closes the panel and gives focus back to the launcher.
        await page.keyboard.press("Escape")
        await expect(page.get_by_test_id("fd-panel")).to_be_hidden()
        await expect(page.get_by_test_id("fd-launcher")).to_be_focused()
