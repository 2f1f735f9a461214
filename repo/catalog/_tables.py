"""The catalog's mappings, beside the entities."""

from __future__ import annotations

from repo import Aggregate, Column, Table

from ._entities import Brand, Product, ProductColor, ProductDetail, ProductSize, Sku

__all__ = ["BRANDS", "COLORS", "PRODUCTS", "PRODUCT_DETAIL", "SIZES", "SKUS", "TABLES"]

BRANDS = Table("brand", Brand, key="brand_id", unique=["brand_name"])
PRODUCTS = Table(
    "product",
    Product,
    key="product_id",
    columns={
        "price": Column(type="numeric(10,2)"),
        "created_at": Column(generated=True, server_default="now()"),
    },
    foreign_keys={"brand_id": BRANDS},
    # A brand's products a page at a time in key order (keyset pages:
    # find(brand_id=b, product_id=gt(last), order_by="product_id", limit=n))
    # walk this index instead of sorting all of the brand's products.
    indexes=[("brand_id", "product_id")],
)
COLORS = Table("product_color", ProductColor, key="product_color_id", unique=["product_color_name"])
SIZES = Table("product_size", ProductSize, key="product_size_id", unique=["product_size_name"])
SKUS = Table(
    "sku",
    Sku,
    key="sku_id",
    unique=[("product_id", "product_size_id", "product_color_id")],
    foreign_keys={"product_id": PRODUCTS, "product_size_id": SIZES, "product_color_id": COLORS},
    columns={
        "stock": Column(type="integer", server_default="0"),
        "version": Column(type="integer", server_default="0"),
    },
    # update() writes only if the row still holds the entity's version, and
    # bumps it: two writers cannot both update from the same read.
    version="version",
)

# Every table of the catalog, in dependency order: what the migrations'
# metadata is built from (alembic.ini names it), so the mappings are the one
# source of truth for the schema.
TABLES = (BRANDS, PRODUCTS, COLORS, SIZES, SKUS)

# A product with its brand and its skus: the foreign keys product -> brand
# and sku -> product say how they join.
PRODUCT_DETAIL = Aggregate(ProductDetail, root=PRODUCTS, one={"brand": BRANDS}, many={"skus": SKUS})
