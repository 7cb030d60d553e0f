"""Messages carry ``meta``: for an AI answer, the provider that gave it and every attempt.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Adds one column with a default, so existing rows stay as they were (an empty mapping).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("meta", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("meta")
