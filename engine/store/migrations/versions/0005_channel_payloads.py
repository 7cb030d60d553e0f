"""Vendor channels: the raw payload of each inbound message, and the vendor's id of each reply.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``message.channel_message_id`` is nullable and indexed with the channel: delivery
statuses (WhatsApp's sent/delivered/read) find their reply by it. Rows written
before have none, which only means no status can reach them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As in 0001: times in UTC, converted by the tables' UTCDateTime type.
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("channel_message_id", sa.String(), nullable=True))
        batch.create_index("ix_message_channel_message_id", ["channel", "channel_message_id"])
    op.create_table(
        "channel_payload",
        sa.Column("channel", sa.String(), primary_key=True),
        sa.Column("message_id", sa.String(), primary_key=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_payload")
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_channel_message_id")
        batch.drop_column("channel_message_id")
