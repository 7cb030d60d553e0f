"""A reply a vendor took is never sent again, and its statuses move its row (SQLite and PostgreSQL).

The deliver activity runs against the real store: the vendor's id of a reply is
recorded with it, a repeat of the delivery (a retry after the worker lost the
answer, a re-run after a crash) finds it there and sends nothing, and a reply
after the channel's reply window is not attempted at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from engine.channels.types import Capabilities, OutboundMessage, Receipt
from engine.runtime.activities import ConversationActivities
from engine.runtime.failures import Failure
from engine.runtime.revisions import FlowCatalog
from engine.runtime.types import DeliverInput
from engine.store import Store


class CountingVendor:
    """A channel whose vendor answers every send with a new message id."""

    name = "whatsapp"
    capabilities = Capabilities(reply_window=timedelta(hours=24), templates=True)

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> Receipt:
        self.sent.append(message)
        return Receipt("sent", channel_message_id=f"wamid.{len(self.sent)}")


def _activities(store: Store, vendor: CountingVendor) -> ConversationActivities:
    catalog = SimpleNamespace(compiled=SimpleNamespace(find=lambda flow, revision: None))
    return ConversationActivities(cast(FlowCatalog, catalog), channels={"whatsapp": vendor}, log=store)


def _reply(key: str, *, wrote_hours_ago: float = 1, **fields: Any) -> DeliverInput:
    wrote = (datetime.now(UTC) - timedelta(hours=wrote_hours_ago)).isoformat()
    base = dict(
        conversation_id="conv-v1", channel="whatsapp", key=key, text="Your order shipped.", recipient="15550001"
    )
    return DeliverInput(**{**base, "customer_at": wrote, **fields})


def _failures(code: str) -> float:
    return REGISTRY.get_sample_value("flowdesk_delivery_failures_total", {"channel": "whatsapp", "code": code}) or 0.0


async def test_a_delivery_the_vendor_took_is_not_sent_again(fx_store: Store) -> None:
    vendor = CountingVendor()
    activities = _activities(fx_store, vendor)
    first = await ActivityEnvironment().run(activities.deliver, _reply("conv-v1:1"))
    again = await ActivityEnvironment().run(activities.deliver, _reply("conv-v1:1"))
    assert (first.status, first.channel_message_id) == ("sent", "wamid.1")
    assert (again.status, again.channel_message_id) == ("duplicate", "wamid.1")
    assert len(vendor.sent) == 1
    assert vendor.sent[0].recipient == "15550001"
    # A fresh worker (nothing in memory) finds it in the store just the same.
    assert await ActivityEnvironment().run(_activities(fx_store, vendor).deliver, _reply("conv-v1:1")) == again
    assert len(vendor.sent) == 1


async def test_vendor_statuses_move_the_reply_forward_only(fx_store: Store) -> None:
    vendor = CountingVendor()
    await ActivityEnvironment().run(_activities(fx_store, vendor).deliver, _reply("conv-v1:2"))

    def status() -> tuple[str, str]:
        row = next(m for m in fx_store.transcript("conv-v1") if m.message_id == "conv-v1:2")
        return row.status, row.detail

    assert status() == ("sent", "")
    assert fx_store.apply_delivery_status("whatsapp", "wamid.1", "read")
    assert not fx_store.apply_delivery_status("whatsapp", "wamid.unknown", "read")
    fx_store.apply_delivery_status("whatsapp", "wamid.1", "delivered")  # late: read stays
    assert status() == ("read", "")
    fx_store.apply_delivery_status("whatsapp", "wamid.1", "failed", "131026: receiver incapable")
    assert status() == ("failed", "131026: receiver incapable")
    fx_store.apply_delivery_status("whatsapp", "wamid.1", "read")
    assert status()[0] == "failed"


async def test_after_the_window_a_free_reply_is_not_attempted_and_a_template_is_sent(fx_store: Store) -> None:
    vendor = CountingVendor()
    activities = _activities(fx_store, vendor)
    before = _failures("window_closed")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.deliver, _reply("conv-v1:3", wrote_hours_ago=25))
    assert refused.value.non_retryable and refused.value.type == Failure.DELIVERY_REJECTED
    assert refused.value.message.startswith("window closed")  # what the transcript's failed entry says
    assert vendor.sent == [] and _failures("window_closed") == before + 1
    template = {"name": "order_update", "language": "en", "params": ["A-100"]}
    sent = await ActivityEnvironment().run(
        activities.deliver, _reply("conv-v1:4", wrote_hours_ago=25, template=template)
    )
    assert sent.status == "sent" and vendor.sent[-1].template == template
