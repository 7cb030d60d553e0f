"""The web chat passes the channel contract: replies logged with a seq, pushed to the visitor's tabs once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.channels.webchat.hub import Connection
from engine.channels.registry import build_channels
from engine.channels.testing import ChannelContract
from engine.channels.types import Channel
from engine.server.channel_host import ServerChannelHost
from engine.store import Store


class RecordingSocket:
    """A visitor's open tab: keeps every frame the server sends it."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))


class TestWebChatContract(ChannelContract):
    kind = "webchat"
    store: Store
    root: Path
    tabs: dict[str, RecordingSocket]

    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path) -> Iterator[None]:
        self.root = tmp_path
        self.store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
        self.store.upgrade()
        self.tabs = {}
        yield
        self.store.close()

    def recipient(self) -> str:
        # The web chat addresses a visitor by their contact: it must exist for its log entry.
        contact = self.store.resolve_contact("webchat", "visitor-1")
        self.store.open_conversation(contact.id, "webchat")
        return contact.id

    def outbound(self, key: str = "reply-1", text: str = "Your order has shipped.", **changes: Any) -> Any:
        message = super().outbound(key, text, **changes)
        conversation = self.store.latest_conversation(message.contact["id"])
        assert conversation is not None
        return type(message)(**{**_fields(message), "conversation_id": conversation.id})

    async def make_channel(self, api_base: str | None = None) -> Channel:
        host = ServerChannelHost(self.store, None, data_dir=self.root, max_message_chars=4000)
        channel = build_channels({}, host=host)["webchat"]
        # The visitor has a tab open on this node.
        socket = RecordingSocket()
        contact_id = self.recipient()
        channel.hub.add(Connection(socket, contact_id))  # type: ignore[attr-defined]
        self.tabs[contact_id] = socket
        return channel

    async def received(self, channel: Channel, recipient: str) -> list[str]:
        # What the widget shows: message frames, one per seq (it drops a repeated seq).
        shown: dict[int, str] = {}
        for frame in self.tabs[recipient].frames:
            if frame["type"] == "message":
                shown.setdefault(frame["seq"], "\n".join([frame["text"], *frame["choices"]]))
        return [shown[seq] for seq in sorted(shown)]


def _fields(message: Any) -> dict[str, Any]:
    return {name: getattr(message, name) for name in message.__slots__}


def test_the_web_chat_is_built_only_where_a_server_holds_its_sockets() -> None:
    assert "webchat" not in build_channels({})  # a standalone worker
    assert "webchat" not in build_channels({"webchat": {"enabled": False}}, host=object())  # type: ignore[arg-type]
