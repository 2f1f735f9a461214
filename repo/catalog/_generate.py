"""A data generator for the catalog, shared by the demo, the tests and the benchmarks.

Deterministic for a given seed and size, and streaming: skus are produced
lazily and loaded with COPY, so a million of them never sit in memory.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import attrs

from ._entities import Brand, Product, ProductColor, ProductSize, Sku
from ._repositories import CatalogUnitOfWork

__all__ = ["CatalogCounts", "load_catalog", "plan_catalog"]

Progress = Callable[[str, int], None]

_ADJECTIVES = [
    "Acme",
    "Bold",
    "Bright",
    "Crisp",
    "Daring",
    "Eager",
    "Fine",
    "Grand",
    "Happy",
    "Ivory",
    "Jolly",
    "Keen",
    "Lucky",
    "Mellow",
    "Noble",
    "Olive",
    "Prime",
    "Quick",
    "Royal",
    "Swift",
    "True",
    "Urban",
    "Vivid",
    "Wild",
    "Young",
    "Zesty",
]
_NOUNS = [
    "Works",
    "Goods",
    "Labs",
    "Supply",
    "Outfitters",
    "Apparel",
    "Gear",
    "Brothers",
    "Makers",
    "Studio",
    "Trading",
]
_COLORS = [
    "black",
    "white",
    "grey",
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "pink",
    "brown",
    "navy",
    "teal",
    "olive",
    "maroon",
    "beige",
    "coral",
    "cyan",
    "gold",
    "indigo",
    "ivory",
    "khaki",
    "lavender",
    "lime",
    "magenta",
    "mint",
    "peach",
    "plum",
    "rust",
    "salmon",
    "sand",
    "silver",
    "sky",
    "tan",
    "turquoise",
    "violet",
    "wine",
    "amber",
    "aqua",
    "charcoal",
]
_SIZES = ["XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL", "5XL"]


@attrs.frozen
class CatalogCounts:
    """How many rows of each kind a load made."""

    brands: int
    products: int
    colors: int
    sizes: int
    skus: int


def plan_catalog(products: int, skus: int) -> tuple[int, int]:
    """Colours and sizes so that every product can have `skus / products` distinct skus."""
    per_product = max(1, math.ceil(skus / max(products, 1)))
    colors = max(1, math.ceil(math.sqrt(per_product)))
    sizes = max(1, math.ceil(per_product / colors))
    return colors, sizes


def _names(base: list[str], count: int) -> list[str]:
    if count <= len(base):
        return base[:count]
    return [f"{base[i % len(base)]} {i // len(base) + 1}" for i in range(count)]


async def load_catalog(
    uow: CatalogUnitOfWork,
    *,
    brands: int = 100,
    products: int = 1_000,
    skus: int = 100_000,
    seed: int = 0,
    progress: Progress | None = None,
    every: int = 10_000,
) -> CatalogCounts:
    """Load a catalog of the given size into empty tables, in the unit of work `uow`.

    Brands, colours, sizes and products come back with their keys
    (``add_many(returning=True)``); the skus stream through COPY. `progress`
    is called as ``progress(kind, rows_so_far)`` every `every` skus and at
    the end of each kind.
    """
    if min(brands, products) < 1 or skus < 0:
        msg = "load_catalog needs at least one brand and one product, and skus >= 0"
        raise ValueError(msg)
    rng = random.Random(seed)
    n_colors, n_sizes = plan_catalog(products, skus)

    def report(kind: str, n: int) -> None:
        if progress is not None:
            progress(kind, n)

    brand_names = [f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {i + 1}" for i in range(brands)]
    stored_brands = await uow.brands.add_many([Brand(n) for n in brand_names], returning=True)
    report("brands", brands)
    colors = await uow.colors.add_many(
        [ProductColor(n) for n in _names(_COLORS, n_colors)], returning=True
    )
    report("colors", n_colors)
    sizes = await uow.sizes.add_many(
        [ProductSize(n) for n in _names(_SIZES, n_sizes)], returning=True
    )
    report("sizes", n_sizes)
    brand_ids = [b.brand_id or 0 for b in stored_brands]
    stored_products = await uow.products.add_many(
        [
            Product(f"{rng.choice(_ADJECTIVES)} product {i + 1}", brand_ids[i % brands])
            for i in range(products)
        ],
        returning=True,
    )
    report("products", products)
    product_ids = [p.product_id or 0 for p in stored_products]
    size_ids = [s.product_size_id or 0 for s in sizes]
    color_ids = [c.product_color_id or 0 for c in colors]

    def sku_rows() -> Iterator[Sku]:
        for k in range(skus):
            combo = k // products
            yield Sku(
                product_ids[k % products], size_ids[combo % n_sizes], color_ids[combo // n_sizes]
            )
            if progress is not None and (k + 1) % every == 0:
                progress("skus", k + 1)

    loaded = await uow.skus.add_many(sku_rows())
    report("skus", loaded)
    return CatalogCounts(brands, products, n_colors, n_sizes, loaded)
