"""The web chat as a channel: the widget's socket in, replies pushed to the visitor's tabs.

Replies are logged first (that gives them the ``seq`` the widget resumes from)
and then pushed to every socket the visitor has open on this node. A visitor who
is offline finds them in the history sent on reconnect, so a web-chat delivery
never fails for good. Only the node holding the socket can push, so the channel
is ``held_by_node``: a single node (embedded Temporal) delivers inside the
conversation's own workflow task, a cluster's node from its own task queue.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from litestar import WebSocket, websocket
from litestar.handlers import WebsocketRouteHandler

from connectors.channels.webchat.hub import WebChatHub
from connectors.channels.webchat.socket import CHANNEL, message_frame, serve_socket
from connectors.channels.webchat.visitors import VisitorTokens, load_or_create_secret
from engine.channels.degrade import image_links
from engine.channels.host import ChannelConfig, ChannelHost
from engine.channels.types import Capabilities, OutboundMessage, Receipt
from engine.errors import ConfigError
from engine.settings_sections import WebChatSettings

#: Socket path the widget connects to.
SOCKET_PATH = "/ws/chat"
CAPABILITIES = Capabilities(text=True, choices=True, held_by_node=True)


class WebChat:
    """The ``webchat`` channel of one node."""

    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(self, host: ChannelHost, options: WebChatSettings) -> None:
        self.host = host
        self.options = options
        self.hub = WebChatHub(rate=options.rate_per_second, burst=options.burst)
        secret = options.secret
        key = secret.encode() if secret else load_or_create_secret(host.data_dir / "webchat.key")
        self.tokens = VisitorTokens(key)

    async def send(self, message: OutboundMessage) -> Receipt:
        images = [a.url for a in message.attachments if a.url]
        if images:
            # The widget shows text: images go as links under it (engine.channels.degrade).
            message = replace(message, text=image_links(message.text, images), attachments=())
        contact_id = str(message.contact.get("id") or "")
        online = bool(contact_id) and self.hub.online(contact_id)
        # "stored": kept for the visitor's next connection, which replays it
        row = await self.host.log_reply(message, channel=CHANNEL, status="sent" if online else "stored")
        # A key logged before returns its row: the same seq is pushed again, which the widget shows once.
        frame = message_frame(row)
        agent_name = message.meta.get("agent_name")
        if isinstance(agent_name, str) and agent_name:
            frame["agent_name"] = agent_name  # an agent's reply: the widget shows who wrote it
        taken = await self.hub.push(contact_id, frame) if online else 0
        return Receipt("sent" if taken else "stored", channel_message_id=str(row.seq), logged=True)

    def routes(self) -> list[WebsocketRouteHandler]:
        """The widget's socket, served by this channel."""

        @websocket(SOCKET_PATH, opt={"public": True}, name="webchat-socket")
        async def chat_socket(socket: WebSocket[Any, Any, Any]) -> None:
            await serve_socket(self, socket)

        return [chat_socket]


def create(config: ChannelConfig) -> WebChat:
    """The registry's factory (``needs_host``: only ``flowdesk serve`` builds it)."""
    host = config.host
    if host is None:
        raise ConfigError("the web chat is served by `flowdesk serve` (it needs the node's sockets)")
    return WebChat(host, WebChatSettings.from_block(config.params, message_max_chars=host.max_message_chars))


create.needs_host = True  # type: ignore[attr-defined]
