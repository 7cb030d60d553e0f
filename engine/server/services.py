"""What the server's handlers share: store, runtime client, catalog, sockets, settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar.di import NamedDependency
from litestar.params import SkipValidation

from engine.runtime.client import Conversations
from engine.runtime.revisions import FlowCatalog
from engine.server.hub import WebChatHub
from engine.server.reload import FlowReloader
from engine.server.settings_reload import SettingsReloader
from engine.server.visitors import VisitorTokens
from engine.settings import Settings
from engine.store import Store

#: Longest web-chat message, in characters, unless ``limits.message_max_chars`` says otherwise.
DEFAULT_MAX_CHARS = 4000


@dataclass(frozen=True)
class WebChatOptions:
    """Limits and secrets of the web-chat channel (``channels.webchat`` in the settings)."""

    max_chars: int = DEFAULT_MAX_CHARS
    #: messages per second per visitor, and the burst allowed above that rate
    rate: float = 1.0
    burst: int = 5
    #: HMAC key a host site signs its users' ids with (``identity_hash``); None: not used
    identity_secret: str | None = None


@dataclass
class Services:
    """Built once by ``flowdesk serve`` (or a test) and put on ``app.state.services``."""

    settings: Settings
    store: Store
    catalog: FlowCatalog
    conversations: Conversations
    hub: WebChatHub
    visitor_tokens: VisitorTokens
    reloader: FlowReloader
    settings_reloader: SettingsReloader
    #: the task queue of this node's web-chat deliveries (``flowdesk-node-<id>``) in a
    #: cluster; "" for a single node, whose conversation worker delivers web chat itself
    node_queue: str
    webchat: WebChatOptions = field(default_factory=WebChatOptions)
    #: shown by the root page and the start-up banner; None when not known
    temporal_ui_url: str | None = None


#: How handlers ask for the services: provided by the app, never parsed from a request.
ServicesDep = NamedDependency[SkipValidation[Services]]
