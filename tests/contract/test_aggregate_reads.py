"""Aggregate reads of many roots, on both backends, on a schema made to strain them.

Teams with two kinds of children from one table (their members, and the
members they mentor, by a second foreign key), a kind referencing the team by
a unique column that is not its key (aliases, by code), and a nested level
(each member with its mentor team, a parent of the same table as the root,
and its badges, built by keyword only). Members carry the awkward values:
NULL, NaN and infinities ordered descending, text arrays, jsonb, time
zones, an enum, Unicode. Every read of many roots (`get_many`, `find`,
`page`) must give what `get` gives root by root, and `stream` too.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from repo import (
    Aggregate,
    AggregateRepository,
    Column,
    ForeignKey,
    NotFound,
    Repository,
    Table,
)

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate


class Role(enum.StrEnum):
    LEAD = "lead"
    MEMBER = "member"


@attrs.frozen
class Team:
    name: str
    code: str
    team_id: int | None = None


@attrs.frozen
class Member:
    team_id: int
    name: str
    score: float | None = None
    tags: list[str] = attrs.field(factory=list)
    meta: Any = None
    joined: dt.datetime | None = None
    role: Role = Role.MEMBER
    mentor_team_id: int | None = None
    member_id: int | None = None


@attrs.frozen
class Alias:
    team_code: str
    alias: str
    alias_id: int | None = None


@attrs.frozen
class Badge:
    member_id: int = attrs.field(kw_only=True)
    label: str = attrs.field(kw_only=True)
    badge_id: int | None = attrs.field(default=None, kw_only=True)


TEAMS = Table("fr_team", Team, key="team_id", unique=["code"])
MEMBERS = Table(
    "fr_member",
    Member,
    key="member_id",
    columns={"meta": Column(type="jsonb", nullable=True)},
    foreign_keys={"team_id": TEAMS, "mentor_team_id": TEAMS},
)
ALIASES = Table(
    "fr_alias", Alias, key="alias_id", foreign_keys={"team_code": ForeignKey(TEAMS, "code")}
)
BADGES = Table("fr_badge", Badge, key="badge_id", foreign_keys={"member_id": MEMBERS})
TABLES = (TEAMS, MEMBERS, ALIASES, BADGES)


@attrs.frozen
class MemberDetail:
    member: Member
    mentor: Team | None
    badges: list[Badge]


@attrs.frozen
class TeamDetail:
    team: Team
    members: list[MemberDetail]
    mentees: list[Member]
    aliases: list[Alias]


MEMBER_DETAIL = Aggregate(
    MemberDetail,
    root=MEMBERS,
    one={"mentor": TEAMS},
    many={"badges": BADGES},
    via={"mentor": "mentor_team_id"},
    order_by={"badges": "-label"},
)
TEAM_DETAIL = Aggregate(
    TeamDetail,
    root=TEAMS,
    many={"members": MEMBER_DETAIL, "mentees": MEMBERS, "aliases": ALIASES},
    via={"members": "team_id", "mentees": "mentor_team_id"},
    order_by={"members": ["-score", "name"], "mentees": "name", "aliases": "-alias"},
)


class TeamDetails(AggregateRepository[TeamDetail]):
    aggregate = TEAM_DETAIL


class Teams(Repository[Team]):
    table = TEAMS


class Members(Repository[Member]):
    table = MEMBERS


class Aliases(Repository[Alias]):
    table = ALIASES


class Badges(Repository[Badge]):
    table = BADGES


@pytest.fixture(scope="module")
def reads_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' tables on PostgreSQL (made once); None in memory."""
    return None if backend_dsn is None else str(request.getfixturevalue("reads_dsn"))


@pytest.fixture
async def teams(db: AnyDatabase, schema: str | None) -> Any:
    """Four teams: members with every awkward value, mentees, aliases and badges; one bare."""
    await truncate(schema, TABLES)
    stored = [
        await db.repository(Teams).add(Team(name, code))
        for name, code in (("naïve ☃", "N"), ("zeta", "Z"), ("alpha", "A"), ("bare", "B"))
    ]
    n, z, a, _ = (t.team_id or 0 for t in stored)
    kiev = dt.timezone(dt.timedelta(hours=2))
    values: list[tuple[int, str, float | None, list[str], Any, dt.datetime | None]] = [
        (n, "ann", 2.5, ["x", ""], {"k": [1, None]}, dt.datetime(2024, 2, 29, 23, 0, tzinfo=kiev)),
        (n, "bob", math.nan, [], None, None),
        (n, "cy", None, ["é☃"], "text", dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
        (n, "dee", math.inf, ["a", "b"], [], None),
        (n, "eve", -math.inf, [], 0, None),
        (n, "fay", 2.5, [], {}, None),
        (z, "gus", -0.0, ["z"], {"deep": {"er": True}}, None),
        (a, "hal", 1e308, [], None, None),
    ]
    members = [
        await db.repository(Members).add(
            Member(
                team,
                name,
                score,
                tags,
                meta,
                joined,
                Role.LEAD if i % 3 == 0 else Role.MEMBER,
                (z, a, None)[i % 3],
            )
        )
        for i, (team, name, score, tags, meta, joined) in enumerate(values)
    ]
    for code, alias in (("N", "en"), ("N", "ñ"), ("Z", "zed"), ("N", "a")):
        await db.repository(Aliases).add(Alias(code, alias))
    for m, label in ((0, "b"), (0, "a"), (0, "c"), (3, "x"), (6, "only")):
        await db.repository(Badges).add(Badge(member_id=members[m].member_id or 0, label=label))
    return db, stored


def _names(detail: TeamDetail) -> dict[str, list[str]]:
    return {
        "members": [m.member.name for m in detail.members],
        "mentees": [m.name for m in detail.mentees],
        "aliases": [a.alias for a in detail.aliases],
        "badges": [",".join(b.label for b in m.badges) for m in detail.members],
        "mentors": [m.mentor.code if m.mentor else "-" for m in detail.members],
    }


async def test_get_builds_each_kind_in_its_order(teams: Any) -> None:
    """Descending scores: NULL first, then NaN, infinity, ..., ties by name; every kind."""
    db, stored = teams
    details = db.repository(TeamDetails)
    first = await details.get(stored[0].team_id)
    assert first.team == stored[0]
    assert _names(first) == {
        "members": ["cy", "bob", "dee", "ann", "fay", "eve"],
        "mentees": [],
        "aliases": ["ñ", "en", "a"],
        "badges": ["", "", "x", "c,b,a", "", ""],
        "mentors": ["-", "A", "Z", "Z", "-", "A"],
    }
    by_name = {m.member.name: m.member for m in first.members}
    assert math.isnan(by_name["bob"].score or 0.0)
    assert by_name["ann"].joined == dt.datetime(2024, 2, 29, 21, 0, tzinfo=dt.UTC)
    assert by_name["ann"].meta == {"k": [1, None]}
    assert by_name["ann"].tags == ["x", ""]
    assert by_name["cy"].meta == "text"
    assert by_name["eve"].meta == 0
    assert by_name["ann"].role is Role.LEAD
    assert first.members[0].mentor is None
    assert first.members[1].mentor == stored[2]
    zeta = await details.get(stored[1].team_id)
    assert _names(zeta)["mentees"] == ["ann", "dee", "gus"]
    assert _names(zeta)["badges"] == ["only"]
    gus = zeta.members[0].member.score
    assert gus is not None
    assert math.copysign(1.0, gus) == -1.0
    assert (await details.get(stored[3].team_id)) == TeamDetail(stored[3], [], [], [])


async def test_many_roots_read_as_each_alone(teams: Any) -> None:
    """get_many (any order, a key twice), find, pages and the stream agree with get."""
    db, stored = teams
    details = db.repository(TeamDetails)
    keys = [t.team_id for t in stored]
    alone = {k: await details.get(k) for k in keys}

    def same(found: list[TeamDetail], expected: list[Any]) -> None:
        # NaN is not equal to itself: compare the members' reprs, which show it
        assert [repr(d) for d in found] == [repr(alone[k]) for k in expected]

    same(await details.get_many(keys[::-1]), keys[::-1])
    same(await details.get_many([keys[1], keys[0], keys[1]]), [keys[1], keys[0], keys[1]])
    by_name = sorted(keys, key=lambda k: alone[k].team.name, reverse=True)
    same(await details.find(order_by="-name"), by_name)
    same(await details.find(order_by="-name", limit=2, offset=1), by_name[1:3])
    same(await details.find(code="Z"), [keys[1]])
    same(await details.find(), keys)  # as stored
    assert await details.find(code="nope") == []
    paged: list[TeamDetail] = []
    after = None
    while True:
        page = await details.page(after=after, limit=3, order_by="name")
        paged += page.items
        if page.next is None:
            break
        after = page.next
    same(paged, sorted(keys, key=lambda k: alone[k].team.name))
    same([d async for d in details.stream(prefetch=2)], keys)
    with pytest.raises(NotFound) as missing:
        await details.get_many([keys[0], -1, -2])
    assert missing.value.key == [-1, -2]
