"""``webchat``: the chat widget on the customer's site, over ``/ws/chat`` sockets.

Settings (``channels.webchat`` in flowdesk.yaml, all optional): ``rate_per_second``
and ``burst`` (per visitor), ``identity_secret`` (host sites that sign their users'
ids), ``secret`` (the visitor-token key; else one is kept in the data directory).
Frames: ``../shared/CHANNELS.md``, web chat.
"""

from connectors.channels.webchat.channel import WebChat, create

__all__ = ["WebChat", "create"]
