"""product: a price, a created_at, and an index for a brand's keyset pages.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

- ``price numeric(10,2)``, nullable: products already on sale have no price
  yet, and a made-up default would be worse than an honest NULL.
- ``created_at timestamptz NOT NULL DEFAULT now()``: ``now()`` is stable, so
  PostgreSQL 11+ stores the default once in the catalog instead of rewriting
  the table; existing rows read the time of this migration.
- ``ix_product_brand_id_product_id``: a brand's products in key order, for
  keyset pages. Built inside the migration's transaction, which blocks writes
  to product while it builds; that is fine at the catalog's size. On a large
  table make it a revision of its own with ``postgresql_concurrently=True``
  inside ``op.get_context().autocommit_block()``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("product", sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=True))
    op.add_column(
        "product",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.create_index("ix_product_brand_id_product_id", "product", ["brand_id", "product_id"])


def downgrade() -> None:
    op.drop_index("ix_product_brand_id_product_id", table_name="product")
    op.drop_column("product", "created_at")
    op.drop_column("product", "price")
