"""The catalog's entities: plain attrs classes, no database import."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

__all__ = ["Brand", "Product", "ProductColor", "ProductDetail", "ProductSize", "Sku", "SkuView"]


@attrs.frozen
class Brand:
    brand_name: str
    brand_id: int | None = None


@attrs.frozen
class Product:
    product_name: str
    brand_id: int
    product_id: int | None = None
    price: Decimal | None = None  # numeric(10,2); None while not priced yet
    created_at: dt.datetime | None = None  # filled in by the database


@attrs.frozen
class ProductColor:
    product_color_name: str
    product_color_id: int | None = None


@attrs.frozen
class ProductSize:
    product_size_name: str
    product_size_id: int | None = None


@attrs.frozen
class Sku:
    product_id: int
    product_size_id: int
    product_color_id: int
    sku_id: int | None = None
    stock: int = 0  # units on hand
    version: int = 0  # optimistic lock: bumped by every update()


@attrs.frozen
class SkuView:
    """A read model: one sku with the names of its product, brand, colour and size."""

    sku_id: int
    product_name: str
    brand_name: str
    product_color_name: str
    product_size_name: str


@attrs.frozen
class ProductDetail:
    """An aggregate: a product with its brand and its skus (by key), read in one statement."""

    product: Product
    brand: Brand
    skus: list[Sku]
