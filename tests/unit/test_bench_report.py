"""The benchmark report's conventions: cost ratios to asyncpg+attrs (>1 is slower), and
cells that hold no figure say why."""

from __future__ import annotations

from typing import Any

import asyncpg

from bench._report import Report
from bench._runner import cut_off

SYSTEMS = ("asyncpg", "asyncpg+attrs", "repo", "sqla-core", "sqla-orm", "tortoise")


def report() -> Report:
    meta: dict[str, Any] = {"rows": 10, "rounds": 3}
    r = Report(SYSTEMS, "asyncpg+attrs", meta)
    for system, figures in {
        "asyncpg": [90.0, 80.0, 1000.0],
        "asyncpg+attrs": [100.0, 100.0, 100.0],
        "repo": [102.0, 110.0, 1.0],
        "sqla-orm": [300.0, 300.0, 300.0],
    }.items():
        for figure in figures:
            r.add("get", system, figure)  # µs/op: a cost
    for system, rate in {
        "asyncpg": 1000,
        "asyncpg+attrs": 800,
        "repo": 3500,
        "sqla-orm": 500,
    }.items():
        r.add("concurrent10", system, float(rate))  # ops/s: a throughput
    return r


def test_cost_ratio_is_median_cost_over_the_yardsticks() -> None:
    """A cost unit divides as is; a throughput divides the other way; medians, not means."""
    r = report()
    assert r.median("get", "repo") == 102.0
    assert r.cost_ratio("get", "repo") == 1.02
    assert r.cost_ratio("get", "sqla-orm") == 3.0
    assert r.cost_ratio("concurrent10", "repo") == 800 / 3500
    assert r.cost_ratio("concurrent10", "sqla-orm") == 1.6


def test_targets_are_judged_on_the_ratios() -> None:
    """get ≤ 1.03x is met at 1.02x; concurrent10 needs 3x raw asyncpg's throughput; the ORM
    must cost 2x repo's."""
    targets = {t.text: (t.figure, t.met) for t in report().targets()}
    assert targets == {
        "repo get cost ≤ 1.03x asyncpg+attrs's": ("1.02x", True),
        "repo concurrent10 cost ≤ 0.333x asyncpg's default pool (throughput ≥ 3x)": (
            "0.29x",
            True,
        ),
        "sqla-orm get cost ≥ 2x repo's (repo 2x faster)": ("2.94x", True),
        "sqla-orm concurrent10 cost ≥ 2x repo's (repo 2x faster)": ("7.00x", True),
    }


def test_a_failed_or_impossible_workload_shows_why_never_a_figure() -> None:
    """A failure or an n/a replaces the cell's figure with its kind and a numbered note
    (one number per system and reason), and a target that needs it is not met."""
    r = report()
    r.add("insert100k", "asyncpg+attrs", 1000.0)
    r.add("insert100k", "repo", 5.0)  # a sample from before the failure: never shown
    r.note("insert100k", "repo", "failed", "DataError: no binary format encoder for jsonb")
    r.add("stream", "asyncpg+attrs", 1000.0)
    r.note("stream", "tortoise", "n/a", "no server-side cursor")
    r.note("fetch10k", "tortoise", "n/a", "no server-side cursor")
    r.add("upsert100k", "repo", 200.0)
    r.add("upsert100k", "sqla-core", 100.0)

    table = r.markdown_table()
    assert "| insert100k | rows/s | - | 1,000 (1.00x) | failed [2] |" in table
    assert "| stream | rows/s | - | 1,000 (1.00x) | - | - | - | n/a [1] |" in table
    assert "1. tortoise, fetch10k, stream: n/a: no server-side cursor" in table
    assert "2. repo, insert100k: failed: DataError: no binary format encoder for jsonb" in table
    assert "\n3. " not in table
    assert r.data()["workloads"]["insert100k"]["systems"]["repo"]["note"]["kind"] == "failed"
    assert "median" not in r.data()["workloads"]["insert100k"]["systems"]["repo"]

    targets = {t.text: (t.figure, t.met) for t in r.targets()}
    add_many = "repo insert100k cost ≤ 1.05x asyncpg+attrs's (add_many throughput ≥ 0.95x COPY's)"
    assert targets[add_many] == ("repo failed", False)
    upsert = "repo upsert100k cost beside SQLAlchemy Core's on_conflict_do_update"
    assert targets[upsert] == ("0.50x", None)


def test_a_failure_replaces_a_caveat_but_not_the_other_way() -> None:
    """A part run again (a caveat) and then a failure: the cell shows the failure."""
    r = report()
    r.note("get", "repo", "note", "ran again")
    r.note("get", "repo", "failed", "RuntimeError: boom")
    r.note("get", "repo", "note", "ran again")
    assert r.failed("get", "repo")
    assert r.notes["get"]["repo"].reason == "RuntimeError: boom"


def test_a_connection_ended_by_the_server_is_told_from_a_failure() -> None:
    """An admin shutdown, even wrapped by a library, is a cut-off; a refused value is not."""
    shutdown = asyncpg.AdminShutdownError("terminating connection due to administrator command")
    wrapped = RuntimeError("(sqlalchemy.dialects.postgresql.asyncpg.Error) ...")
    wrapped.__cause__ = shutdown
    assert cut_off(wrapped)
    assert cut_off(asyncpg.InterfaceError("connection is closed"))
    assert not cut_off(ValueError("no binary format encoder for type jsonb"))
    lost = RuntimeError("the connection to the server was lost: no binary format encoder")
    assert not cut_off(lost)
