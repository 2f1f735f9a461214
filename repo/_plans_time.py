"""The value checks of the date and time types: what each column type keeps, and what not.

A value the driver or the server would change (a naive datetime read in the
server's zone, an offset's seconds dropped) is refused on both backends
alike, naming what it should have been (see `_plans.py`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["date_check", "timestamp_check", "timestamptz_check", "timetz_check"]


def timestamptz_check(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return "an aware datetime"
    if value.tzinfo is None or value.utcoffset() is None:
        return (
            "an aware datetime, but this one is naive (no tzinfo) and timestamptz would "
            "read it in the server's time zone: use an aware datetime (tzinfo), "
            "e.g. datetime.now(UTC)"
        )
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        return (
            "an aware datetime that is still a datetime in UTC, where timestamptz stores it: "
            "this one falls outside the years 1 to 9999 there"
        )
    if value in _TZ_INFINITIES:
        return (
            "an aware datetime other than datetime.max or datetime.min in UTC: the driver "
            "stores those as infinity and -infinity, which read back as naive datetimes"
        )
    return None


_TZ_INFINITIES = (dt.datetime.max.replace(tzinfo=dt.UTC), dt.datetime.min.replace(tzinfo=dt.UTC))


def timestamp_check(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return "a naive datetime"
    if value.tzinfo is not None and value.utcoffset() is not None:
        return (
            "a naive datetime, but this one is aware and timestamp (without time zone) would "
            "drop its zone: give it naive (in the zone you mean), or make the column timestamptz"
        )
    return None


# PostgreSQL's timetz keeps an offset of at most 15:59:59 either way, to the second;
# asyncpg reads it back in whole minutes (cut toward zero), so only those round-trip.
_TIMETZ_LIMIT = dt.timedelta(hours=15, minutes=59)
_MINUTE = dt.timedelta(minutes=1)


def timetz_check(value: Any) -> str | None:
    if not isinstance(value, dt.time):
        return "an aware time"
    offset = value.utcoffset()
    if offset is None:
        return (
            "an aware time, but this one is naive (no tzinfo, or a zone that needs a date "
            "to give an offset): timetz keeps a time's UTC offset; give it one, e.g. "
            "time(9, tzinfo=timezone(timedelta(hours=2))), or make the column time"
        )
    if abs(offset) > _TIMETZ_LIMIT or offset % _MINUTE:
        return (
            "an aware time whose UTC offset is whole minutes within ±15:59: timetz holds "
            "no more, and the driver reads its seconds back as none"
        )
    return None


def date_check(value: Any) -> str | None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        return "a date (not a datetime)"
    return None
