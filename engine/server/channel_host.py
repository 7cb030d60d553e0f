"""The server's side of every channel: contacts, the log, and handing messages to conversations.

Channels reach the store and the conversations' runtime client only through this
(:class:`engine.channels.host.ChannelHost`), in their own terms, so a connector
imports neither. :meth:`ServerChannelHost.accept` is the one path a customer's
message takes into Flowdesk: logged first (the transcript has it before any reply
to it, and the workflow does not log it again), then handed to its conversation
(once the update returns it is durable); a conversation that ended in between is
replaced by a new one, and a failed hand-over marks the logged row failed, which
the channel's retry of the same message id sets right.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from engine.channels.errors import NoFlowLive
from engine.channels.host import Accepted, Contact, InboundText, LoggedMessage
from engine.channels.types import Attachment, OutboundMessage
from engine.message_log import RecordInput
from engine.metrics import MESSAGES_IN, UPDATE_LATENCY, WEBHOOK_REJECTED
from engine.runtime.client import ConversationEnded, Conversations, NoFlowError
from engine.runtime.types import IN_TASK_META, SENDER_META, InboundMessage
from engine.store import Contact as ContactRow
from engine.store import Message as MessageRow
from engine.store import Store
from engine.store.conversations import HANDOFF

T = TypeVar("T")
log = logging.getLogger(__name__)


def contact_of(row: ContactRow) -> Contact:
    return Contact(row.id, row.name, row.locale, tuple(row.tags or ()))


def logged(row: MessageRow) -> LoggedMessage:
    return LoggedMessage(
        seq=int(row.seq or 0),
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        direction=row.direction,
        sender=row.sender,
        text=row.text,
        at=row.at,
        choices=tuple(row.choices or ()),
        status=row.status,
    )


class ServerChannelHost:
    """:class:`~engine.channels.host.ChannelHost` over this node's store and runtime client."""

    def __init__(
        self,
        store: Store,
        conversations: Conversations | None,
        *,
        data_dir: Path,
        max_message_chars: int,
        node_queue: str = "",
    ) -> None:
        self.store = store
        self.conversations = conversations
        self.data_dir = data_dir
        self.max_message_chars = max_message_chars
        #: this node's delivery queue in a cluster; "" for a single node
        self.node_queue = node_queue
        #: who wrote from where, and their open conversation: a known chat costs no read per message
        self._recent = RecentChats()
        #: queued messages being handed over, one chat at a time
        self._inbox = Inbox()
        #: where customers' typing goes (the agents' stream, set by the node); nowhere until then
        self.typing_sink: Callable[[str, bool], None] | None = None

    def customer_typing(self, conversation_id: str, typing: bool) -> None:
        if self.typing_sink is not None:
            self.typing_sink(conversation_id, typing)

    async def find_contact(self, channel: str, external_id: str) -> Contact | None:
        row = await asyncio.to_thread(self.store.find_contact, channel, external_id)
        return None if row is None else contact_of(row)

    async def resolve_contact(self, channel: str, external_id: str, *, name: str | None, locale: str | None) -> Contact:
        cached = self._recent.contact(channel, external_id)
        if cached is not None and _knows(cached, name, locale):
            return cached
        contact = await self._resolve_contact(channel, external_id, name=name, locale=locale)
        self._recent.remember_contact(channel, external_id, contact)
        return contact

    async def _resolve_contact(
        self, channel: str, external_id: str, *, name: str | None, locale: str | None
    ) -> Contact:
        store = self.store
        known = await asyncio.to_thread(store.find_contact, channel, external_id)
        if known is not None and _knows(known, name, locale):
            return contact_of(known)  # the common case: a read, no write transaction
        row = await store.in_write_thread(store.resolve_contact, channel, external_id, name=name, locale=locale)
        return contact_of(row)

    async def history(self, contact_id: str, *, after_seq: int) -> list[LoggedMessage]:
        conversation = await asyncio.to_thread(self.store.latest_conversation, contact_id)
        if conversation is None:
            return []
        rows = await asyncio.to_thread(self.store.transcript, conversation.id, after_seq=after_seq)
        return [logged(r) for r in rows if r.direction in ("in", "out")]

    async def log_reply(self, message: OutboundMessage, *, channel: str, status: str) -> LoggedMessage:
        entry = RecordInput(
            conversation_id=message.conversation_id,
            direction="out",
            text=message.text,
            channel=channel,
            message_id=message.key,
            at=message.at,
            status=status,
            sender=message.sender,
            flow=message.flow,
            revision=message.revision,
            meta=dict(message.meta),
        )
        row = await self.store.in_write_thread(self.store.record_message, entry, choices=list(message.choices))
        return logged(row)

    async def accept(
        self,
        message: InboundText,
        *,
        conversation_id: str | None = None,
        typing: Callable[[], Awaitable[None]] | None = None,
    ) -> Accepted:
        self._runtime()
        row, created, conversation_id = await self._log(message, conversation_id, RECEIVED)
        # Typing means "a reply is being produced": not while the conversation waits in an
        # agent's queue (the agent's own typing comes through the same frame).
        if typing is not None and not await self._with_agents(conversation_id):
            await typing()
        return await self._hand_over(message, row, conversation_id, first=created or row.status != RECEIVED)

    async def enqueue(self, message: InboundText) -> Accepted:
        """Log the message as ``queued`` and hand it to its conversation in the background.

        For webhooks: once the row is written the message is durable, and the vendor is
        answered without waiting for the workflow (whose update returns only after the
        task that made the reply). Messages of one chat are handed over in the order they
        came; a hand-over that fails is retried (the row stays ``queued``), and one cut
        off by a stop is resumed when the node starts again (:meth:`resume_queued`).
        """
        self._runtime()
        row, created, conversation_id = await self._log(message, None, QUEUED)
        # Handed over before: nothing new. Queued (still on its way) or failed (a retry sets it right): go.
        duplicate = not created and row.status == RECEIVED
        seq = int(row.seq or 0)
        if not duplicate and seq not in self._inbox.pending:
            self._inbox.start(seq, self._chat_key(message), self._deliver_queued(message, row, conversation_id))
        return Accepted(logged(row), conversation_id, duplicate)

    async def resume_queued(self) -> int:
        """Hand over the messages a stopped node had accepted but not handed over; how many."""
        rows = await asyncio.to_thread(self.store.queued_inbound)
        for row in rows:
            message = await self._queued_message(row)
            seq = int(row.seq or 0)
            if message is not None and seq not in self._inbox.pending:
                self._inbox.start(seq, self._chat_key(message), self._deliver_queued(message, row, row.conversation_id))
        return len(rows)

    async def aclose(self) -> None:
        """Stop handing over (what is left stays ``queued`` for the next start)."""
        await self._inbox.cancel()

    async def _deliver_queued(self, message: InboundText, row: MessageRow, conversation_id: str) -> None:
        delay = 0.5
        while True:
            try:
                await self._hand_over(message, row, conversation_id, first=True)
                return
            except NoFlowLive as exc:  # logged failed: a redelivery cannot help, an operator can
                WEBHOOK_REJECTED.labels(message.channel, "no_flow").inc()
                log.error("%s message %s not answered: %s", message.channel, message.message_id, exc)
                return
            except Exception as exc:
                log.warning(
                    "%s message %s not handed over yet (%s); trying again in %.0f s",
                    message.channel,
                    message.message_id,
                    type(exc).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _log(
        self, message: InboundText, conversation_id: str | None, status: str
    ) -> tuple[MessageRow, bool, str]:
        store = self.store
        if conversation_id is None:
            conversation_id = await self._open(message)
        entry = RecordInput(
            conversation_id,
            "in",
            message.text,
            message.channel,
            message.message_id,
            message.at,
            status=status,
            meta=_inbound_meta(message),
        )
        row, created = await store.in_write_thread(store.record_inbound, entry, payload=message.raw)
        return row, created, conversation_id

    async def _hand_over(self, message: InboundText, row: MessageRow, conversation_id: str, *, first: bool) -> Accepted:
        """Send the logged message to its conversation (a new one if it ended), settling its row.

        ``first``: this is the message's first acceptance (counted once; a redelivery of
        an accepted message reaches the workflow's update again, which answers with the
        first result, so the update cannot tell).
        """
        conversations, store = self._runtime(), self.store
        for _ in range(2):
            if row.conversation_id != conversation_id or row.status not in (RECEIVED, QUEUED):
                # Logged in a conversation that has ended since, or failed before: now it is here.
                settled = await store.in_write_thread(store.settle_inbound, row.seq, conversation_id, row.status)
                row = settled or row
            inbound = InboundMessage(
                id=message.message_id,
                text=message.text,
                channel=message.channel,
                at=message.at,
                contact=_contact_view(message.contact),
                meta=self._meta(message),
                choice=message.choice,
                attachments=[a.as_dict() for a in message.attachments],
                parts=[dict(p) for p in message.parts],
            )
            started = time.perf_counter()
            try:
                accepted = await conversations.send(conversation_id, inbound)
            except ConversationEnded:
                await asyncio.to_thread(store.end_conversation, conversation_id)
                conversation_id = await self._open(message, ended=conversation_id)
                continue
            except NoFlowError:
                await store.in_write_thread(store.settle_inbound, row.seq, conversation_id, "failed", "no flow live")
                raise NoFlowLive(f"no flow is live for channel {message.channel!r}") from None
            except Exception as exc:
                if row.status != QUEUED:  # a queued one stays queued: its hand-over is retried
                    detail = f"not handed to the conversation: {type(exc).__name__}"
                    await store.in_write_thread(store.settle_inbound, row.seq, conversation_id, "failed", detail)
                raise
            UPDATE_LATENCY.labels(message.channel).observe(time.perf_counter() - started)
            if row.status == QUEUED:
                await store.in_write_thread(store.mark_handed_over, int(row.seq or 0))
            elif row.status != RECEIVED:
                settled = await store.in_write_thread(store.settle_inbound, row.seq, conversation_id, RECEIVED)
                row = settled or row
            # No second read to turn typing off when this message queued the conversation: a
            # hand-off always says something now (the flow's text or messages.handoff), and
            # the widget hides typing when a reply arrives. The read cost ~6 ms of CPU a message.
            if first and not accepted.duplicate:
                MESSAGES_IN.labels(message.channel).inc()
            return Accepted(logged(row), conversation_id, accepted.duplicate)
        raise RuntimeError("the conversation ended twice while a message was sent")

    def _runtime(self) -> Conversations:
        if self.conversations is None:
            raise RuntimeError("this host cannot hand messages to conversations (no runtime client)")
        return self.conversations

    @staticmethod
    def _chat_key(message: InboundText) -> str:
        return f"{message.channel}\x00{message.contact.id}"

    async def _queued_message(self, row: MessageRow) -> InboundText | None:
        """A queued row as the message it was (its contact from its conversation)."""
        conversation = await asyncio.to_thread(self.store.get_conversation, row.conversation_id)
        if conversation is None:
            return None
        contact = await asyncio.to_thread(self.store.get_contact, conversation.contact_id)
        if contact is None:
            return None
        meta = row.meta or {}
        attachments = tuple(Attachment.from_dict(a) for a in meta.get("attachments") or () if isinstance(a, dict))
        return InboundText(
            channel=row.channel,
            message_id=row.message_id,
            text=row.text,
            contact=contact_of(contact),
            at=row.at,
            sender=str(meta.get("sender") or ""),
            choice=meta.get("choice"),
            attachments=attachments,
            parts=tuple(meta.get("parts") or ()),
        )

    async def _open(self, message: InboundText, *, ended: str | None = None) -> str:
        """The contact's open conversation on the channel (``ended``: the one that just ended is not)."""
        recent = self._recent.conversation(message.contact.id, message.channel)
        if recent is not None and recent != ended:
            return recent  # a guess: an ended one answers ConversationEnded, and a new one is opened
        store = self.store
        current = await asyncio.to_thread(store.current_conversation, message.contact.id, message.channel)
        if current is not None and current.id != ended:
            conversation_id = current.id  # a read; only a new conversation takes the write thread
        else:
            opened, _created = await store.in_write_thread(store.open_conversation, message.contact.id, message.channel)
            conversation_id = opened.id
        self._recent.remember_conversation(message.contact.id, message.channel, conversation_id)
        return conversation_id

    async def _with_agents(self, conversation_id: str) -> bool:
        """Whether the conversation is handed off (queued for or taken by an agent), per the log."""
        conversation = await asyncio.to_thread(self.store.get_conversation, conversation_id)
        return conversation is not None and conversation.status == HANDOFF

    def _meta(self, message: InboundText) -> dict[str, Any]:
        meta: dict[str, Any] = {"logged": True}  # this server logged the message: the workflow does not
        if message.sender:
            meta[SENDER_META] = message.sender  # replies go to whoever wrote last, on their channel
        if message.held_by_node and self.node_queue:
            meta["reply_queue"] = self.node_queue  # a cluster: replies come back to this node
        elif not self.node_queue:
            # A single node: its conversation worker holds every channel (web chat's sockets,
            # vendors' clients), so a reply goes out inside the workflow task that made it,
            # saving an activity task and a workflow task. Vendor messages are answered
            # before their hand-over (enqueue), so the send does not hold the webhook up.
            meta[IN_TASK_META] = True
        return meta


#: A customer's message handed to its conversation.
RECEIVED = "received"
#: Logged (durable), its hand-over to the conversation still to come (webhooks).
QUEUED = "queued"


class Inbox:
    """Background hand-overs, in arrival order per chat: one chat's messages never overtake each other."""

    def __init__(self) -> None:
        self.pending: set[int] = set()
        self._tails: dict[str, asyncio.Task[None]] = {}

    def start(self, seq: int, chat: str, work: Coroutine[Any, Any, None]) -> None:
        self.pending.add(seq)
        previous = self._tails.get(chat)
        task = asyncio.get_running_loop().create_task(self._after(previous, seq, work), name=f"hand over {seq}")
        self._tails[chat] = task
        task.add_done_callback(lambda done: self._finished(chat, done))

    async def _after(self, previous: asyncio.Task[None] | None, seq: int, work: Coroutine[Any, Any, None]) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # its outcome is its own; only the order matters here
            await work
        finally:
            self.pending.discard(seq)

    def _finished(self, chat: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(chat) is task:
            del self._tails[chat]

    async def cancel(self) -> None:
        tasks = list(self._tails.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class RecentChats:
    """Contacts by channel identity and their open conversation by channel, for a while, bounded.

    Vendor webhooks name the customer by their channel id on every message; looking
    the contact and the conversation up each time was two reads a message. Entries
    live ``ttl`` seconds (an agent's edit of a contact shows within that), and a
    conversation that ended is found out by the workflow (ConversationEnded), which
    opens the next one.
    """

    def __init__(self, *, size: int = 10_000, ttl: float = 300.0) -> None:
        self.size, self.ttl = size, ttl
        self._contacts: OrderedDict[tuple[str, str], tuple[float, Contact]] = OrderedDict()
        self._conversations: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def contact(self, channel: str, external_id: str) -> Contact | None:
        return self._get(self._contacts, (channel, external_id))

    def conversation(self, contact_id: str, channel: str) -> str | None:
        return self._get(self._conversations, (contact_id, channel))

    def remember_contact(self, channel: str, external_id: str, contact: Contact) -> None:
        self._put(self._contacts, (channel, external_id), contact)

    def remember_conversation(self, contact_id: str, channel: str, conversation_id: str) -> None:
        self._put(self._conversations, (contact_id, channel), conversation_id)

    def _get(self, entries: OrderedDict[tuple[str, str], tuple[float, T]], key: tuple[str, str]) -> T | None:
        found = entries.get(key)
        if found is None:
            return None
        if time.monotonic() - found[0] > self.ttl:
            del entries[key]
            return None
        return found[1]

    def _put(self, entries: OrderedDict[tuple[str, str], tuple[float, T]], key: tuple[str, str], value: T) -> None:
        entries[key] = (time.monotonic(), value)
        entries.move_to_end(key)
        while len(entries) > self.size:
            entries.popitem(last=False)


def _knows(contact: Contact | ContactRow, name: str | None, locale: str | None) -> bool:
    """Whether ``contact`` already has what a message says of its sender (else the store fills it in)."""
    return (not name or bool(contact.name)) and (not locale or bool(contact.locale))


def _inbound_meta(message: InboundText) -> dict[str, Any]:
    """What the log keeps of a message beside its text: what was tapped, attached or shared."""
    meta: dict[str, Any] = {}
    if message.sender:
        meta["sender"] = message.sender  # whom replies go to; a resumed queued message needs it
    if message.choice is not None:
        meta["choice"] = message.choice
    if message.attachments:
        meta["attachments"] = [a.as_dict() for a in message.attachments]
    if message.parts:
        meta["parts"] = [dict(p) for p in message.parts]
    return meta


def _contact_view(contact: Contact) -> dict[str, Any]:
    """What the flow sees as ``contact``."""
    return {"id": contact.id, "name": contact.name, "locale": contact.locale, "tags": list(contact.tags)}
