"""What vendor channels add to the log: raw payloads, the vendor's ids of replies, their statuses.

A webhook's message is logged like any other (:mod:`engine.store.messages`); its
payload is kept beside it as it came, once per channel message id, so a
redelivery storm keeps one copy. A reply a vendor took carries the vendor's id of
it (``channel_message_id``): the deliver activity asks for it before sending, so a
delivery the vendor acknowledged is never sent again, and the vendor's statuses
(sent, delivered, read, failed) find their row by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select

from engine.store.base import StoreBase
from engine.store.columns import utcnow
from engine.store.tables import ChannelPayload, Message

#: How far each vendor status moves a reply: a late "delivered" never undoes "read".
_STATUS_ORDER = {"stored": 0, "sent": 1, "delivered": 2, "read": 3}
PAYLOADS = ChannelPayload.__table__  # type: ignore[attr-defined]
MESSAGES_TABLE = Message.__table__  # type: ignore[attr-defined]
#: The raw_ref of a message whose payload is in channel_payload.
PAYLOAD_REF = "channel_payload"


class ChannelLogMixin(StoreBase):
    """Raw payloads of inbound messages; vendor ids and statuses of replies."""

    def keep_payload(self, channel: str, message_id: str, body: Mapping[str, Any]) -> None:
        """Keep a message's raw payload; a redelivered one is already kept and stays as it was."""
        dialect = self._writer.dialect.name
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        row = {"channel": channel, "message_id": message_id, "body": dict(body), "received_at": utcnow()}
        statement = insert(PAYLOADS).values(**row)
        # One statement, no ORM session: every vendor message pays it.
        with self._writer.begin() as connection:
            connection.execute(statement.on_conflict_do_nothing(index_elements=["channel", "message_id"]))

    def payload(self, channel: str, message_id: str) -> dict[str, Any] | None:
        """The raw payload of an inbound message, as the vendor sent it."""
        with self._read() as session:
            row = session.get(ChannelPayload, (channel, message_id))
            return None if row is None else dict(row.body)

    def sent_reply(self, conversation_id: str, key: str) -> str | None:
        """The vendor's id of the reply with delivery ``key``, if a vendor took it."""
        columns = MESSAGES_TABLE.c
        query = sa_select(columns.channel_message_id).where(
            columns.conversation_id == conversation_id, columns.direction == "out", columns.message_id == key
        )
        # Core, not the ORM: every vendor delivery asks, and the answer is one column.
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar()
        return str(found) if found else None

    def apply_delivery_status(self, channel: str, channel_message_id: str, status: str, detail: str = "") -> bool:
        """Move the reply the vendor names to ``status``; False when no reply has that id (yet).

        Statuses only move forward (sent, delivered, read); ``failed`` is final and
        says why in the row's detail.
        """
        query = select(Message).where(
            Message.channel == channel, Message.channel_message_id == channel_message_id, Message.direction == "out"
        )
        with self._write() as session:
            row = session.exec(query).first()
            if row is None:
                return False
            if row.status == "failed":
                return True
            if status == "failed":
                row.status, row.detail = "failed", detail or "the channel reported a failure"
            elif _STATUS_ORDER.get(status, -1) > _STATUS_ORDER.get(row.status, -1):
                row.status = status
            else:
                return True
            session.add(row)
            return True
