"""Table mappings: inference, declarations and refusals, without a server."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import attrs
import pytest

from repo import Column, DataError, ForeignKey, InvalidQuery, Table
from repo._types import enum_type_name, kind_of
from repo.catalog import BRANDS, PRODUCTS, SKUS, Brand


@attrs.frozen
class Everything:
    name: str
    count: int
    price: decimal.Decimal
    at: dt.datetime
    ident: uuid.UUID
    doc: dict[str, Any]
    flag: bool
    note: str | None = None
    version: int = 1
    thing_id: int | None = None


def test_types_nullability_and_generated_key_are_inferred() -> None:
    """SQL types and NOT NULL come from annotations; a key defaulting to None is generated."""
    t = Table("everything", Everything, key="thing_id", version="version")
    types = {c.field: (c.sql_type, c.nullable, c.generated) for c in t.columns}
    assert types == {
        "name": ("text", False, False),
        "count": ("bigint", False, False),
        "price": ("numeric", False, False),
        "at": ("timestamp with time zone", False, False),
        "ident": ("uuid", False, False),
        "doc": ("jsonb", False, False),
        "flag": ("boolean", False, False),
        "note": ("text", True, False),
        "version": ("bigint", False, False),
        "thing_id": ("bigint", False, True),
    }


def test_column_overrides() -> None:
    """Column() overrides the name, type, nullability and generation of a field."""

    @attrs.frozen
    class Item:
        label: str
        price: decimal.Decimal
        created: dt.datetime | None = None
        item_id: int = 0

    t = Table(
        "item",
        Item,
        key="item_id",
        columns={
            "label": Column(name="item_label"),
            "price": Column(type="numeric(10,2)"),
            "created": Column(generated=True, server_default="now()"),
        },
    )
    spec = {c.field: c for c in t.columns}
    assert spec["label"].column == "item_label"
    assert spec["price"].sql_type == "numeric(10,2)"
    assert spec["created"].generated
    assert not spec["created"].nullable
    assert not spec["item_id"].generated
    assert t.select_list == '"item_label", "price", "created", "item_id"'


def test_constraints_follow_the_naming_convention() -> None:
    """pk_<table>, uq_<table>_<cols>, fk_<table>_<col>_<target>, registered for errors."""
    assert BRANDS.primary_key_name == "pk_brand"
    assert [u.name for u in BRANDS.unique] == ["uq_brand_brand_name"]
    assert [fk.name for fk in SKUS.foreign_keys] == [
        "fk_sku_product_id_product",
        "fk_sku_product_size_id_product_size",
        "fk_sku_product_color_id_product_color",
    ]
    assert SKUS.constraint("uq_sku_product_id_product_size_id_product_color_id") == (
        "sku",
        ("product_id", "product_size_id", "product_color_id"),
    )
    # A delete of a product breaks a sku's constraint: the product table knows it.
    assert PRODUCTS.constraint("fk_sku_product_id_product") == ("sku", ("product_id",))
    assert BRANDS.constraint("no_such_constraint") is None
    fk = ForeignKey("brand", column="brand_id", on_delete="CASCADE")
    assert (fk.target_table, fk.target_column) == ("brand", "brand_id")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "nope"}, "key 'nope'"),
        ({"key": "brand_id", "columns": {"ghost": Column()}}, "ghost"),
        ({"key": "brand_id", "generated": ["ghost"]}, "ghost"),
        ({"key": "brand_id", "unique": ["ghost"]}, "ghost"),
        ({"key": "brand_id", "version": "brand_name"}, "version"),
        ({"key": "brand_id", "columns": {"brand_name": Column(name='x"; DROP')}}, "identifier"),
        (
            {"key": "brand_id", "columns": {"brand_name": Column(name="brand_id")}},
            "'brand_name' and 'brand_id' both map to the column 'brand_id'",
        ),
        (
            {"key": "brand_id", "columns": {"brand_id": Column(name="brand_name")}},
            "both map to the column 'brand_name'",
        ),
        ({"key": "brand_id", "unique": [()]}, "at least one field"),
        ({"key": "brand_id", "unique": [("brand_name", "brand_name")]}, "names a field twice"),
    ],
)
def test_bad_mappings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """A mapping naming unknown fields or unsafe identifiers, storing two fields in one
    column, or with an empty or repeating unique constraint raises InvalidQuery."""
    with pytest.raises(InvalidQuery, match=message):
        Table("brand", Brand, **kwargs)


def test_table_name_must_be_an_identifier() -> None:
    """Table names reach SQL, so only plain identifiers are accepted."""
    with pytest.raises(InvalidQuery, match="identifier"):
        Table("brand; DROP TABLE x", Brand, key="brand_id")


def test_only_attrs_classes_are_mapped() -> None:
    """Mapping a non-attrs class is refused."""

    class Plain:
        pass

    with pytest.raises(InvalidQuery, match="attrs"):
        Table("plain", Plain, key="x")


def test_record_to_entity_and_entity_to_values_are_compiled() -> None:
    """from_record builds the entity from a row in column order; values() reverses it."""
    brand = BRANDS.from_record(("acme", 3))
    assert brand == Brand("acme", 3)
    assert BRANDS.values(brand) == ("acme", 3)
    assert BRANDS.key_of(brand) == 3


def test_kw_only_fields_map_by_name() -> None:
    """Entities with keyword-only fields are built by name."""

    @attrs.frozen(kw_only=True)
    class K:
        a: str
        k_id: int | None = None

    t = Table("k", K, key="k_id")
    assert t.from_record(("x", 1)) == K(a="x", k_id=1)


def test_indexes_follow_the_naming_convention() -> None:
    """indexes= names each index ix_<table>_<cols>, columns in the order given."""

    @attrs.frozen
    class Row:
        group_id: int
        label: str = attrs.field(alias="title")
        row_id: int | None = None

    t = Table(
        "row",
        Row,
        key="row_id",
        columns={"label": Column(name="row_label")},
        indexes=["label", ("group_id", "row_id")],
    )
    assert [(i.name, i.fields) for i in t.indexes] == [
        ("ix_row_row_label", ("label",)),
        ("ix_row_group_id_row_id", ("group_id", "row_id")),
    ]
    assert [(i.name, i.fields) for i in PRODUCTS.indexes] == [
        ("ix_product_brand_id_product_id", ("brand_id", "product_id")),
    ]


@pytest.mark.parametrize("indexes", [["ghost"], [("brand_name", "ghost")], [()]])
def test_indexes_on_unknown_fields_are_refused(indexes: list[Any]) -> None:
    """An index naming a field the entity lacks (or none at all) raises InvalidQuery."""
    with pytest.raises(InvalidQuery, match="index"):
        Table("brand", Brand, key="brand_id", indexes=indexes)


class Mood(enum.StrEnum):
    CALM = "calm"
    ANGRY = "angry"


class HTTPStatusKind(enum.StrEnum):
    OK = "ok"


@attrs.frozen
class Person:
    name: str
    mood: Mood
    mood_before: Mood | None = None
    person_id: int | None = None


def test_str_enum_fields_map_to_a_postgres_enum_named_by_convention() -> None:
    """A StrEnum field's SQL type is an enum type named after the class in snake_case."""
    t = Table("person", Person, key="person_id")
    types = {c.field: (c.sql_type, c.nullable) for c in t.columns}
    assert types == {
        "name": ("text", False),
        "mood": ("mood", False),
        "mood_before": ("mood", True),
        "person_id": ("bigint", False),
    }
    assert enum_type_name(HTTPStatusKind) == "http_status_kind"


def test_rows_decode_enum_labels_to_members_and_members_encode_as_themselves() -> None:
    """from_record turns labels into members (None stays None); values() passes members on."""
    t = Table("person", Person, key="person_id")
    person = t.from_record(("ann", "calm", None, 1))
    assert Person("ann", Mood.CALM, None, 1) == person
    assert type(person.mood) is Mood
    assert t.values(person) == ("ann", Mood.CALM, None, 1)

    @attrs.frozen(kw_only=True)
    class KwPerson:
        mood: Mood
        kw_person_id: int | None = None

    kw = Table("kw_person", KwPerson, key="kw_person_id")
    assert KwPerson(mood=Mood.ANGRY, kw_person_id=2) == kw.from_record(("angry", 2))


class Level(enum.Enum):
    LOW = 1


@attrs.frozen
class Gauge:
    level: Level
    gauge_id: int | None = None


def test_enum_without_str_members_is_refused() -> None:
    """A plain Enum cannot travel as a PostgreSQL enum label: the mapping says to use StrEnum."""
    with pytest.raises(InvalidQuery, match="StrEnum"):
        Table("gauge", Gauge, key="gauge_id")


@attrs.frozen
class Stamped:
    at: dt.datetime
    tags: list[str]
    counts: list[int | None]
    shades: list[Mood]
    doc: list[dict[str, Any]]
    anything: list[Any]
    loose: list  # type: ignore[type-arg]
    nested: list[list[int]]
    stamped_id: int | None = None


def test_lists_of_scalars_are_arrays_and_other_lists_are_jsonb() -> None:
    """list[str] is text[], list[int] bigint[], a list of a StrEnum its type's array; bare
    lists and lists of dicts, of Any or of lists are jsonb."""
    t = Table("stamped", Stamped, key="stamped_id")
    kinds = {c.field: (c.sql_type, c.kind, c.array, c.element_nullable) for c in t.columns}
    assert kinds == {
        "at": ("timestamp with time zone", "timestamptz", False, False),
        "tags": ("text[]", "text", True, False),
        "counts": ("bigint[]", "int8", True, True),
        "shades": ("mood[]", "mood", True, False),
        "doc": ("jsonb", "jsonb", False, False),
        "anything": ("jsonb", "jsonb", False, False),
        "loose": ("jsonb", "jsonb", False, False),
        "nested": ("jsonb", "jsonb", False, False),
        "stamped_id": ("bigint", "int8", False, False),
    }
    record: tuple[Any, ...] = (dt.datetime.now(dt.UTC), [], [1, None], ["calm"], [], [], [], [], 1)
    assert t.from_record(record).shades == [Mood.CALM]


@pytest.mark.parametrize(
    "sql",
    [
        "timestamptz",
        "timestamptz(3)",
        "TIMESTAMPTZ (6)",
        "timestamp with time zone",
        "timestamp(3) with time zone",
        "TIMESTAMP  WITH  TIME ZONE",
        "timestamp (0) with time zone",
    ],
)
def test_every_spelling_of_timestamptz_refuses_naive_datetimes(sql: str) -> None:
    """A declared timestamptz, however spelled, takes aware datetimes only."""
    t = Table("stamped", Stamped, key="stamped_id", columns={"at": Column(type=sql)})
    assert t.field("at").kind == "timestamptz"
    good = Stamped(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), [], [], [], [], [], [], [])
    t.check_entity(good)
    with pytest.raises(DataError, match="naive"):
        t.check_entity(attrs.evolve(good, at=dt.datetime(2026, 1, 1)))


@pytest.mark.parametrize("sql", ["timestamp", "timestamp(3)", "timestamp without time zone"])
def test_a_declared_timestamp_refuses_aware_datetimes(sql: str) -> None:
    """A timestamp without time zone takes naive datetimes only: an aware one's zone would
    be dropped without a word."""
    t = Table("stamped", Stamped, key="stamped_id", columns={"at": Column(type=sql)})
    assert t.field("at").kind == "timestamp"
    good = Stamped(dt.datetime(2026, 1, 1), [], [], [], [], [], [], [])
    t.check_entity(good)
    with pytest.raises(DataError, match="aware"):
        t.check_entity(attrs.evolve(good, at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("integer", ("int4", False)),
        ("INT4", ("int4", False)),
        ("smallint", ("int2", False)),
        ("bigserial", ("int8", False)),
        ("numeric(12, 2)", ("numeric", False)),
        ("decimal", ("numeric", False)),
        ("double precision", ("float8", False)),
        ("real", ("float4", False)),
        ("character varying(20)", ("text", False)),
        ("text[]", ("text", True)),
        ("integer ARRAY", ("int4", True)),
        ("numeric(5,2)[][]", ("numeric", True)),
        ("public.order_status", ("order_status", False)),
        ("time(3) without time zone", ("time", False)),
    ],
)
def test_sql_types_are_read_however_spelled(sql: str, kind: tuple[str, bool]) -> None:
    """kind_of gives one canonical name per type, and whether it is an array of it."""
    assert kind_of(sql) == kind
