"""Settings revisions: the public settings conversations carry, by content hash.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Two new tables and nothing changed in the old ones: conversations started before
carry no settings revision and keep running on the defaults they had.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As in 0001: times in UTC, converted by the tables' UTCDateTime type.
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "settings_revision",
        sa.Column("revision", sa.String(), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "live_settings",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("revision", sa.String(), sa.ForeignKey("settings_revision.revision"), nullable=False),
        sa.Column("file", sa.String(), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("live_settings")
    op.drop_table("settings_revision")
