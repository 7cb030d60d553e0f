"""Web-chat delivery on the node that holds the visitor's socket.

The conversation workflow schedules ``flowdesk.deliver`` for a web-chat reply on
the task queue named in the visitor's latest message (``reply_queue``): this
node's own queue, polled by a small worker in ``flowdesk serve``. The reply is
stored first (that gives it the ``seq`` the widget resumes from) and then pushed
to every socket the visitor has open here. A visitor who is offline finds it in
the history sent on reconnect, so a web-chat delivery never fails for good.
"""

from __future__ import annotations

from temporalio import activity

from engine.message_log import RecordInput
from engine.metrics import MESSAGES_OUT
from engine.runtime.types import Delivered, DeliverInput
from engine.server.hub import WebChatHub
from engine.server.webchat import CHANNEL, message_frame
from engine.store import Store


class WebChatChannel:
    """Web chat as an outbound channel: store the reply (its seq), then push it to the visitor's sockets.

    A single node (embedded Temporal) gives it to its conversation worker, so a
    reply is delivered inside the workflow task that made it (a local activity;
    the socket handler marks its messages ``reply_in_task``); a cluster's nodes run
    it behind their own task queue (:class:`NodeDelivery`), since only the node
    holding the socket can push. A repeated key stores nothing new and pushes the
    same ``seq`` again, which the widget shows once.
    """

    name = CHANNEL

    def __init__(self, store: Store, hub: WebChatHub) -> None:
        self.store = store
        self.hub = hub

    async def send(self, data: DeliverInput) -> Delivered:
        contact_id = str(data.contact.get("id") or "")
        online = bool(contact_id) and self.hub.online(contact_id)
        entry = RecordInput(
            conversation_id=data.conversation_id,
            direction="out",
            text=data.text,
            channel=data.channel or CHANNEL,
            message_id=data.key,
            at=data.at,
            # "stored": kept for the visitor's next connection, which replays it
            status="sent" if online else "stored",
            sender=data.sender,
            flow=data.flow,
            revision=data.revision,
            meta=data.meta,
        )
        row = await self.store.in_write_thread(self.store.record_message, entry, choices=list(data.choices))
        taken = await self.hub.push(contact_id, message_frame(row)) if online else 0
        return Delivered(data.key, "sent" if taken else "stored", channel_message_id=str(row.seq), logged=True)


class NodeDelivery:
    """The ``flowdesk.deliver`` activity on this node's own task queue (a cluster's web chat)."""

    def __init__(self, channel: WebChatChannel) -> None:
        self.channel = channel

    @activity.defn(name="flowdesk.deliver")
    async def deliver(self, data: DeliverInput) -> Delivered:
        delivered = await self.channel.send(data)
        MESSAGES_OUT.labels(CHANNEL).inc()
        return delivered
