"""sku: a stock count, and a version column for optimistic locking.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

- ``stock integer NOT NULL DEFAULT 0``: units on hand. A constant default
  is stored once in the catalog (PostgreSQL 11+), so adding the column does
  not rewrite the table.
- ``version integer NOT NULL DEFAULT 0``: ``Repository.update`` writes a sku
  only if its row still holds the entity's version, and bumps it, raising
  ``StaleEntity`` when another writer got there first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sku", sa.Column("stock", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column(
        "sku", sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("sku", "version")
    op.drop_column("sku", "stock")
