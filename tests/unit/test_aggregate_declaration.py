"""Declaring an aggregate: links found from the foreign keys, or refused naming the tables."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from repo import Aggregate, AggregateRepository, ConfigurationError, Table
from repo.catalog import BRANDS, PRODUCT_DETAIL, PRODUCTS, SKUS, ProductDetail
from repo.testing import MemoryDatabase


@attrs.frozen
class Person:
    name: str
    person_id: int | None = None


@attrs.frozen
class Letter:
    sender_id: int
    recipient_id: int
    text: str
    letter_id: int | None = None


PEOPLE = Table("person", Person, key="person_id")
LETTERS = Table(
    "letter",
    Letter,
    key="letter_id",
    foreign_keys={"sender_id": PEOPLE, "recipient_id": PEOPLE},
)


@attrs.frozen
class Outbox:
    person: Person
    letters: list[Letter]


@attrs.frozen
class Loose:
    person: Person
    letters: Any


@attrs.frozen
class Sent:
    letter: Letter
    sender: Person


def test_links_come_from_the_declared_foreign_keys() -> None:
    """product -> brand and sku -> product are found without via=; skus are ordered by key."""
    (brand,) = PRODUCT_DETAIL.ones
    (skus,) = PRODUCT_DETAIL.manys
    assert (brand.link.fields, brand.link.targets) == (("brand_id",), ("brand_id",))
    assert (skus.link.fields, skus.link.targets) == (("product_id",), ("product_id",))
    assert [o.field for o in skus.orders] == ["sku_id"]
    assert PRODUCT_DETAIL.root_field == "product"


def test_two_foreign_keys_to_one_table_need_via() -> None:
    """Ambiguous links are refused naming both tables and the choices; via= picks one."""
    with pytest.raises(ConfigurationError, match=r"letter has several foreign keys to person"):
        Aggregate(Outbox, root=PEOPLE, many={"letters": LETTERS})
    outbox = Aggregate(Outbox, root=PEOPLE, many={"letters": LETTERS}, via={"letters": "sender_id"})
    assert outbox.manys[0].link.fields == ("sender_id",)
    sent = Aggregate(Sent, root=LETTERS, one={"sender": PEOPLE}, via={"sender": "sender_id"})
    assert sent.ones[0].link.fields == ("sender_id",)


def test_a_missing_foreign_key_is_refused_unless_via_names_it() -> None:
    """No foreign key from brand to person: refused with what to do; via= joins on the key."""
    with pytest.raises(ConfigurationError, match=r"brand declares no foreign key to person"):
        Aggregate(Loose, root=PEOPLE, many={"letters": BRANDS})
    joined = Aggregate(Loose, root=PEOPLE, many={"letters": BRANDS}, via={"letters": "brand_id"})
    assert joined.manys[0].link.targets == ("person_id",)
    with pytest.raises(ConfigurationError, match=r"has no field 'nope'"):
        Aggregate(Outbox, root=PEOPLE, many={"letters": LETTERS}, via={"letters": "nope"})


def test_the_entity_must_fit_the_declaration() -> None:
    """Fields named in one=/many= must exist, one field must be left for the root, and
    annotations must agree with the tables given."""
    with pytest.raises(ConfigurationError, match=r"has no field 'brands'"):
        Aggregate(ProductDetail, root=PRODUCTS, one={"brands": BRANDS}, many={"skus": SKUS})
    with pytest.raises(ConfigurationError, match=r"exactly one field besides"):
        Aggregate(ProductDetail, root=PRODUCTS, many={"skus": SKUS})
    with pytest.raises(ConfigurationError, match=r"annotated"):
        Aggregate(
            ProductDetail,
            root=SKUS,
            one={"brand": BRANDS},
            many={"skus": SKUS},
            via={"brand": "product_id", "skus": "product_id"},
        )
    with pytest.raises(ConfigurationError, match=r"order_by"):
        Aggregate(
            ProductDetail,
            root=PRODUCTS,
            one={"brand": BRANDS},
            many={"skus": SKUS},
            order_by={"skus": "colour"},
        )


def test_a_repository_without_an_aggregate_is_refused() -> None:
    """An AggregateRepository subclass must set `aggregate`."""

    class Nothing(AggregateRepository[ProductDetail]):
        pass

    with pytest.raises(Exception, match=r"has no `aggregate`"):
        MemoryDatabase().repository(Nothing)
