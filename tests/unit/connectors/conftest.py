"""Provider tests share the AI clients' pool: each test leaves it closed, as a stopping worker does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.ai.http import CLIENTS


@pytest.fixture(autouse=True)
async def fx_close_clients() -> AsyncIterator[None]:
    yield
    await CLIENTS.aclose()
