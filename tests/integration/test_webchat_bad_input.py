"""Web chat under hostile input: each case answers with an error, and never kills the socket silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from websockets.exceptions import ConnectionClosed

from tests.integration.server_support import chat, running_node


@pytest.mark.parametrize("since", ["9223372036854775808", "99999999999999999999999999", "-1", "1e3"])
async def test_a_bad_since_cursor_gets_a_bad_parameter_error(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, since: str
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, chat(node, f"?since={since}") as visitor:
        error = await visitor.next("error")
        assert error["code"] == "bad_parameter" and "`since`" in error["message"]
        with pytest.raises(ConnectionClosed) as closed:
            await visitor.socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_deeply_nested_frames_get_an_error_and_the_socket_stays_usable(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, chat(node) as visitor:
        await visitor.next("history")
        for frame in ("[" * 100_000, '{"a":' * 100_000):
            await visitor.send(frame)
            assert (await visitor.next("error"))["code"] == "bad_frame"
        await visitor.say("still here")
        await visitor.reply_to("got still here")
