"""The products catalog: brand, product, product_color, product_size, sku.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), sa.Identity(always=False), nullable=False)


def upgrade() -> None:
    op.create_table(
        "brand",
        _key("brand_id"),
        sa.Column("brand_name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", name="pk_brand"),
        sa.UniqueConstraint("brand_name", name="uq_brand_brand_name"),
    )
    op.create_table(
        "product",
        _key("product_id"),
        sa.Column("product_name", sa.Text(), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name="pk_product"),
        sa.ForeignKeyConstraint(["brand_id"], ["brand.brand_id"], name="fk_product_brand_id_brand"),
    )
    op.create_table(
        "product_color",
        _key("product_color_id"),
        sa.Column("product_color_name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("product_color_id", name="pk_product_color"),
        sa.UniqueConstraint("product_color_name", name="uq_product_color_product_color_name"),
    )
    op.create_table(
        "product_size",
        _key("product_size_id"),
        sa.Column("product_size_name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("product_size_id", name="pk_product_size"),
        sa.UniqueConstraint("product_size_name", name="uq_product_size_product_size_name"),
    )
    op.create_table(
        "sku",
        _key("sku_id"),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("product_size_id", sa.BigInteger(), nullable=False),
        sa.Column("product_color_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sku_id", name="pk_sku"),
        sa.UniqueConstraint(
            "product_id",
            "product_size_id",
            "product_color_id",
            name="uq_sku_product_id_product_size_id_product_color_id",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.product_id"], name="fk_sku_product_id_product"
        ),
        sa.ForeignKeyConstraint(
            ["product_size_id"],
            ["product_size.product_size_id"],
            name="fk_sku_product_size_id_product_size",
        ),
        sa.ForeignKeyConstraint(
            ["product_color_id"],
            ["product_color.product_color_id"],
            name="fk_sku_product_color_id_product_color",
        ),
    )


def downgrade() -> None:
    op.drop_table("sku")
    op.drop_table("product_size")
    op.drop_table("product_color")
    op.drop_table("product")
    op.drop_table("brand")
