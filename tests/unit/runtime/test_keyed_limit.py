"""KeyedLimit: how many messages one process has in flight to one conversation."""

from __future__ import annotations

import asyncio

from engine.runtime.client import KeyedLimit


async def test_holders_of_one_key_wait_beyond_the_limit_and_other_keys_do_not() -> None:
    limit = KeyedLimit(2)
    running: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    release = asyncio.Event()

    async def hold(key: str) -> None:
        async with limit.hold(key):
            running[key] += 1
            most[key] = max(most[key], running[key])
            await release.wait()
            running[key] -= 1

    tasks = [asyncio.create_task(hold("a")) for _ in range(5)] + [asyncio.create_task(hold("b"))]
    await asyncio.sleep(0.01)
    assert running == {"a": 2, "b": 1}
    release.set()
    await asyncio.gather(*tasks)
    assert most == {"a": 2, "b": 1}


async def test_a_key_keeps_no_gate_once_nobody_holds_it() -> None:
    limit = KeyedLimit(1)
    for key in ("a", "b", "c"):
        async with limit.hold(key):
            assert len(limit) == 1
    assert len(limit) == 0


async def test_a_holder_that_fails_or_is_cancelled_lets_the_next_one_in() -> None:
    limit = KeyedLimit(1)
    entered = asyncio.Event()

    async def stuck() -> None:
        async with limit.hold("a"):
            entered.set()
            await asyncio.sleep(60)

    first = asyncio.create_task(stuck())
    await entered.wait()
    waiting = asyncio.create_task(stuck())
    await asyncio.sleep(0.01)
    waiting.cancel()  # gave up while waiting for the gate
    first.cancel()
    await asyncio.gather(first, waiting, return_exceptions=True)
    assert len(limit) == 0
    async with limit.hold("a"):
        pass
