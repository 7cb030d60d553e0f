"""The initial schema: contacts, identities, conversations, messages, flow revisions, live flows, API tokens.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand to mirror ``engine/store/tables.py`` exactly (names of tables,
columns, constraints and indexes); the test suite compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Times are stored in UTC; the tables' UTCDateTime type does the converting, the column is plain.
_TIME = sa.DateTime(timezone=True)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", _TIME, nullable=False)


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("locale", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        _created_at(),
    )
    op.create_table(
        "identity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.String(), sa.ForeignKey("contact.id"), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        _created_at(),
        sa.UniqueConstraint("channel", "external_id", name="uq_identity_channel_external_id"),
    )
    op.create_index("ix_identity_contact_id", "identity", ["contact_id"])

    op.create_table(
        "conversation",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("contact_id", sa.String(), sa.ForeignKey("contact.id"), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("end_status", sa.String(), nullable=True),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=False),
        sa.Column("assigned_agent", sa.String(), nullable=True),
        _created_at(),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
    )
    op.create_index("ix_conversation_contact_id", "conversation", ["contact_id"])
    op.create_index("ix_conversation_status", "conversation", ["status"])
    op.create_index("ix_conversation_flow", "conversation", ["flow"])
    op.create_index("ix_conversation_updated_at", "conversation", ["updated_at"])

    op.create_table(
        "message",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("conversation_id", sa.String(), sa.ForeignKey("conversation.id"), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("sender", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("raw_ref", sa.String(), nullable=True),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("revision", sa.String(), nullable=False),
        sa.Column("at", sa.String(), nullable=False),
        _created_at(),
        sa.UniqueConstraint("conversation_id", "direction", "message_id", name="uq_message_conversation_direction_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_message_inbound_channel_id",
        "message",
        ["channel", "message_id"],
        unique=True,
        sqlite_where=sa.text("direction = 'in'"),
        postgresql_where=sa.text("direction = 'in'"),
    )

    op.create_table(
        "flow_revision",
        sa.Column("revision", sa.String(), primary_key=True),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        _created_at(),
    )
    op.create_index("ix_flow_revision_flow", "flow_revision", ["flow"])

    op.create_table(
        "live_flow",
        sa.Column("flow", sa.String(), primary_key=True),
        sa.Column("revision", sa.String(), sa.ForeignKey("flow_revision.revision"), nullable=False),
        sa.Column("file", sa.String(), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        _created_at(),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.UniqueConstraint("name", name="uq_api_token_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )


def downgrade() -> None:
    for table in ("api_token", "live_flow", "flow_revision", "message", "conversation", "identity", "contact"):
        op.drop_table(table)
