"""Flow revisions carry the knowledge files their ``faq`` providers name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Adds one column with a default: a revision stored before it has no knowledge
attached, compiles as it did (its hash covers none) and its FAQ answers keep
coming from the AI activity, which reads the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flow_revision") as batch:
        batch.add_column(sa.Column("knowledge", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("flow_revision") as batch:
        batch.drop_column("knowledge")
