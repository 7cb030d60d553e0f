"""What the server's handlers share: store, runtime client, catalog, channels, settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litestar.di import NamedDependency
from litestar.params import SkipValidation

from engine.channels.host import ChannelHost
from engine.channels.types import Channel
from engine.runtime.client import Conversations
from engine.runtime.revisions import FlowCatalog
from engine.server.agent_hub import AgentHub
from engine.server.reload import FlowReloader
from engine.server.settings_reload import SettingsReloader
from engine.settings import Settings
from engine.store import Store

if TYPE_CHECKING:
    # Built from the services (they read the store and send to conversations): typed here only.
    from engine.server.dispatcher import Dispatcher
    from engine.server.presence import Presence
    from engine.server.queues import QueueDirectory


@dataclass
class Services:
    """Built once by ``flowdesk serve`` (or a test) and put on ``app.state.services``."""

    settings: Settings
    store: Store
    catalog: FlowCatalog
    conversations: Conversations
    #: every channel this node runs, by address (``webchat``, ``telegram:support``)
    channels: Mapping[str, Channel]
    reloader: FlowReloader
    settings_reloader: SettingsReloader
    #: the task queue of this node's web-chat deliveries (``flowdesk-node-<id>``) in a
    #: cluster; "" for a single node, whose conversation worker delivers web chat itself
    node_queue: str
    #: shown by the root page and the start-up banner; None when not known
    temporal_ui_url: str | None = None
    #: what webhooks hand customers' messages to; None where no runtime client is (some tests)
    channel_host: ChannelHost | None = None
    #: the agents' event stream of this node (``/ws/agent``, the dispatcher's wake-ups)
    agent_hub: AgentHub = field(default_factory=AgentHub)
    #: the queues (settings' and admins'), agents' presence and the assignment loop of this node;
    #: None until the node builds them (handlers that need one build a stand-in: see api_agent_actions)
    queues: QueueDirectory | None = None
    presence: Presence | None = None
    dispatcher: Dispatcher | None = None


#: How handlers ask for the services: provided by the app, never parsed from a request.
ServicesDep = NamedDependency[SkipValidation[Services]]
