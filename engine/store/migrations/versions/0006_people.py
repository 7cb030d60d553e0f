"""People: users and their sessions, queues, read marks, canned responses, the audit log, CSAT.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Conversations gain what the agent inbox filters and sorts by (queue, waiting since,
labels, snooze, the latest message); rows written before have none of it, which
reads as "never handed off". API tokens gain a role: those made before roles
existed keep the power they had, ``admin``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As in 0001: times in UTC, converted by the tables' UTCDateTime type.
_TIME = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("queue", sa.String(), nullable=True))
        batch.add_column(sa.Column("waiting_since", _TIME, nullable=True))
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("snoozed_until", _TIME, nullable=True))
        batch.add_column(sa.Column("snoozed_until_reply", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_message", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("last_message_at", _TIME, nullable=True))
        batch.create_index("ix_conversation_queue", ["queue"])
        batch.create_index("ix_conversation_assigned_agent", ["assigned_agent"])
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("role", sa.String(), nullable=False, server_default="admin"))
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("presence", sa.String(), nullable=False, server_default="offline"),
        sa.Column("presence_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("disabled_at", _TIME, nullable=True),
        sa.UniqueConstraint("email", name="uq_user_account_email"),
    )
    op.create_table(
        "user_session",
        sa.Column("id_hash", sa.String(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True),
        sa.Column("csrf_token", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_seen_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("user_agent", sa.String(), nullable=False),
    )
    op.create_index("ix_user_session_user_id", "user_session", ["user_id"])
    op.create_table(
        "agent_queue",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("hours", sa.String(), nullable=True),
        sa.Column("when_nobody", sa.String(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_table(
        "read_mark",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("conversation_id", sa.String(), sa.ForeignKey("conversation.id"), primary_key=True),
        sa.Column("seq", _SEQ, nullable=False),
    )
    op.create_table(
        "canned_response",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True),
        sa.Column("shortcut", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("uq_canned_response_owner_shortcut", "canned_response", ["owner_id", "shortcut"], unique=True)
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("actor_role", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("conversation_id", sa.String(), nullable=True),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("address", sa.String(), nullable=False),
    )
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])
    op.create_index("ix_audit_entry_actor", "audit_entry", ["actor"])
    op.create_index("ix_audit_entry_conversation_id", "audit_entry", ["conversation_id"])
    op.create_table(
        "csat_rating",
        sa.Column("conversation_id", sa.String(), sa.ForeignKey("conversation.id"), primary_key=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(), nullable=True),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
    )
    op.create_index("ix_csat_rating_agent", "csat_rating", ["agent"])
    op.create_index("ix_csat_rating_at", "csat_rating", ["at"])


def downgrade() -> None:
    for table in ("csat_rating", "audit_entry", "canned_response", "read_mark", "agent_queue", "user_session"):
        op.drop_table(table)
    op.drop_table("user_account")
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("role")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_index("ix_conversation_assigned_agent")
        batch.drop_index("ix_conversation_queue")
        for column in (
            "last_message_at",
            "last_message",
            "snoozed_until_reply",
            "snoozed_until",
            "labels",
            "waiting_since",
            "queue",
        ):
            batch.drop_column(column)
