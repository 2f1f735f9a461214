"""The catalog's mappings, beside the entities."""

from __future__ import annotations

from repo._mapping import Table

from ._entities import Brand, Product, ProductColor, ProductSize, Sku

__all__ = ["BRANDS", "COLORS", "PRODUCTS", "SIZES", "SKUS", "TABLES"]

BRANDS = Table("brand", Brand, key="brand_id", unique=["brand_name"])
PRODUCTS = Table("product", Product, key="product_id", foreign_keys={"brand_id": BRANDS})
COLORS = Table("product_color", ProductColor, key="product_color_id", unique=["product_color_name"])
SIZES = Table("product_size", ProductSize, key="product_size_id", unique=["product_size_name"])
SKUS = Table(
    "sku",
    Sku,
    key="sku_id",
    unique=[("product_id", "product_size_id", "product_color_id")],
    foreign_keys={"product_id": PRODUCTS, "product_size_id": SIZES, "product_color_id": COLORS},
)

# Every table of the catalog, in dependency order: what the migrations'
# metadata is built from (alembic.ini names it), so the mappings are the one
# source of truth for the schema.
TABLES = (BRANDS, PRODUCTS, COLORS, SIZES, SKUS)
