"""A conversation's replies on their way out: queued in order, sent one at a time.

The workflow holds one :class:`Outbox` per run. A reply is queued with the key that
makes its delivery idempotent and the route to the node that holds the customer's
socket, then sent by :meth:`Outbox.deliver_forever`: inside the workflow task when
the channel allows it, else as a regular activity. Workflow code throughout.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from engine.flow.events import AIFailed, AIResult
    from engine.runtime.activities import ConversationActivities
    from engine.runtime.effects import LogScope, entry, record
    from engine.runtime.failures import ACTIVITY_FAILURES, cause, failure_text
    from engine.runtime.patches import DELIVER_IN_TASK
    from engine.runtime.run_state import RunState
    from engine.runtime.types import IN_TASK_META, SENDER_META, ConversationInput, DeliverInput

#: A delivery is retried for about two minutes, then recorded as failed: a
#: reply that arrives an hour late is worse than a visible failure.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60), maximum_attempts=8
)
#: The bound of one delivery attempt, in the task or as an activity. Vendors' sends
#: time out before it (engine/channels/http.py, SEND_TIMEOUT), so a slow vendor is a
#: ChannelUnavailable to retry, not a send cut off half-way and made again.
DELIVERY_TIMEOUT = timedelta(seconds=10)
#: A reply sent inside the workflow task holds that task open: the same bound, one
#: quick retry, then the regular activity with DELIVERY_RETRY takes over.
IN_TASK_TIMEOUT = DELIVERY_TIMEOUT
IN_TASK_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2)


class Outbox:
    """The run's replies, in order; see the module docstring."""

    def __init__(
        self, run: RunState, data: ConversationInput, *, now: Callable[[], str], answered_here: set[str]
    ) -> None:
        #: the run's state: the reply counter, the conversation (contact, latest message), waiting events
        self.run = run
        self.data = data
        self.now = now
        #: AI calls this run answered in workflow code (filled by effects.call_ai)
        self.answered_here = answered_here
        self.items: deque[DeliverInput] = deque()
        #: a reply is being sent (it stays first in ``items`` until then)
        self.delivering = False
        #: replies made in this run by their text's digest (see _reply_key)
        self._reply_texts: dict[str, int] = {}

    @property
    def busy(self) -> bool:
        """Whether a reply is queued or being sent."""
        return bool(self.items) or self.delivering

    def queue(
        self,
        text: str,
        choices: tuple[str, ...],
        sender: str,
        meta: dict[str, Any] | None = None,
        *,
        template: dict[str, Any] | None = None,
        attachments: tuple[dict[str, str], ...] = (),
    ) -> None:
        """Queue one reply to the customer, on the channel of their latest message."""
        self.run.sent += 1
        state = self.run.state
        in_task = workflow.patched(DELIVER_IN_TASK)
        key = self._reply_key(text) if in_task else f"{self.data.conversation_id}:{self.run.sent}"
        route = self._reply_route()
        self.items.append(
            DeliverInput(
                conversation_id=self.data.conversation_id,
                channel=self._reply_channel(),
                key=key,
                text=text,
                choices=list(choices),
                sender=sender,
                contact=state.contact if state else {},
                flow=state.flow if state else self.data.flow,
                revision=state.revision if state else self.data.revision,
                at=self.now(),
                route=route,
                meta=meta or {},
                in_task=in_task and not route and self._reply_in_task(),
                customer_at=str(self._latest_message().get("at") or ""),
                recipient=self._recipient(),
                template=dict(template or {}),
                attachments=[dict(a) for a in attachments],
            )
        )

    async def deliver_forever(self) -> None:
        """Send queued replies one at a time, in order."""
        while True:
            await workflow.wait_condition(lambda: bool(self.items))
            item = self.items[0]
            self.delivering = True
            try:
                await self._send(item)
            except ACTIVITY_FAILURES as exc:
                # A node that held the socket and went away: the reply is kept for the
                # visitor's next connection (any node replays the store's history).
                kept = bool(item.route) and isinstance(cause(exc), TimeoutError)
                if not kept:
                    workflow.logger.warning("delivery %s failed for good: %s", item.key, failure_text(exc))
                scope = LogScope.of(self.data, self.run.state)
                await record(
                    entry(
                        scope,
                        item.key,
                        "out",
                        item.text,
                        item.at,  # like a sent reply's entry: when the reply was queued
                        status="stored" if kept else "failed",
                        sender=item.sender,
                        channel=item.channel,
                        detail=failure_text(exc),
                    )
                )
            finally:
                self.items.popleft()
                self.delivering = False

    # -- where and how a reply goes ---------------------------------------------------------

    def _latest_message(self) -> dict[str, Any]:
        # Replies follow the latest inbound message: its channel, and what its meta says.
        state = self.run.state
        return (state.message if state else None) or {}

    def _reply_channel(self) -> str:
        return str(self._latest_message().get("channel") or self.data.channel)

    def _recipient(self) -> str:
        # Whoever wrote last, on the channel they wrote on (a Telegram chat id, a phone number).
        meta = self._latest_message().get("meta") or {}
        return str(meta.get(SENDER_META) or "")

    def _reply_route(self) -> str:
        # A socket channel names the node that holds the socket in each message.
        meta = self._latest_message().get("meta") or {}
        return str(meta.get("reply_queue") or "")

    def _reply_in_task(self) -> bool:
        # The channel endpoint says so in each message: only it knows that this
        # worker holds the channel (web chat on a single node).
        meta = self._latest_message().get("meta") or {}
        return bool(meta.get(IN_TASK_META))

    def _reply_key(self, text: str) -> str:
        """A key that a re-run of the workflow task gives the same reply, whatever the order.

        A reply sent inside a workflow task that is then lost (the server drops a
        task while updates pile up; a worker dies) is made again when the task runs
        again, and the re-run may take the waiting messages in another order. So
        the key is not the reply's number but its text and how many replies of
        that text this run made before: the re-run's copy finds its key taken and
        is not sent, and no reply can take the key of another. A run starts with
        the count of replies before it, which keeps keys apart across runs.
        """
        digest = _digest(text)
        made = self._reply_texts[digest] = self._reply_texts.get(digest, 0) + 1
        return f"{self.data.conversation_id}:{self.data.sent}.{digest}.{made}"

    def _only_own_events(self) -> bool:
        """Whether every waiting event is an answer this workflow code made itself.

        In-task delivery is for a task that took one message: a re-run of a lost task
        that took several may take them in another order. An answer made here (an
        offline chain's) is not another message: a re-run makes it again, the same.
        """
        return all(isinstance(e, (AIResult, AIFailed)) and e.call_id in self.answered_here for e in self.run.events)

    async def _send(self, item: DeliverInput) -> None:
        """Deliver one reply: inside this workflow task when it can, else as a regular activity."""
        if item.in_task and self._only_own_events() and await self._send_in_task(item):
            return
        if item.route:
            await workflow.execute_activity_method(
                ConversationActivities.deliver,
                item,
                task_queue=item.route,
                # Nobody polls the queue of a node that is gone: keep the reply instead.
                schedule_to_start_timeout=timedelta(seconds=self.data.node_pickup_seconds),
                start_to_close_timeout=DELIVERY_TIMEOUT,
                retry_policy=DELIVERY_RETRY,
            )
            return
        await workflow.execute_activity_method(
            ConversationActivities.deliver,
            item,
            # Short: a delivery cut off by a crashed worker holds up the replies after it.
            start_to_close_timeout=DELIVERY_TIMEOUT,
            retry_policy=DELIVERY_RETRY,
        )

    async def _send_in_task(self, item: DeliverInput) -> bool:
        """Deliver from a local activity, in the task that made the reply; False to fall back.

        This spares the reply a round trip through the server and the conversation a
        second workflow task. A local activity runs before its task is committed,
        so the task may be re-run (a worker crash, or the server dropping a task
        while updates pile up) and the reply made again: its key (see _reply_key)
        makes the repeat a no-op. It is used only when no other event waits (a
        re-run that takes several messages at once falls back to the regular
        activity, scheduled from committed history) and only for a channel
        served on this worker (a single node: web chat's sockets, vendors' clients).
        """
        try:
            await workflow.execute_local_activity_method(
                ConversationActivities.deliver,
                item,
                start_to_close_timeout=IN_TASK_TIMEOUT,
                retry_policy=IN_TASK_RETRY,
            )
        except ACTIVITY_FAILURES as exc:
            if isinstance(exc, ApplicationError) and exc.non_retryable:
                raise  # refused for good: the regular activity would be refused too
            workflow.logger.info("delivery %s in the task failed (%s); sending it as an activity", item.key, exc)
            return False
        return True


def _digest(text: str) -> str:
    # 64 bits: two different replies of one conversation never share a key.
    return hashlib.blake2s(text.encode("utf-8"), digest_size=8).hexdigest()
