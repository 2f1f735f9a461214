"""The benchmark report's one convention: cost ratios to asyncpg+attrs, >1 is slower."""

from __future__ import annotations

from typing import Any

from bench._report import Report

SYSTEMS = ("asyncpg", "asyncpg+attrs", "repo", "sqlalchemy")


def report() -> Report:
    meta: dict[str, Any] = {"rows": 10, "rounds": 3}
    r = Report(SYSTEMS, "asyncpg+attrs", meta)
    for system, figures in {
        "asyncpg": [90.0, 80.0, 1000.0],
        "asyncpg+attrs": [100.0, 100.0, 100.0],
        "repo": [104.0, 110.0, 1.0],
        "sqlalchemy": [300.0, 300.0, 300.0],
    }.items():
        for figure in figures:
            r.add("get", system, figure)  # µs/op: a cost
    for system, rate in {
        "asyncpg": 1000,
        "asyncpg+attrs": 800,
        "repo": 1250,
        "sqlalchemy": 500,
    }.items():
        r.add("concurrent", system, float(rate))  # ops/s: a throughput
    return r


def test_cost_ratio_is_median_cost_over_the_yardsticks() -> None:
    """A cost unit divides as is; a throughput divides the other way; medians, not means."""
    r = report()
    assert r.median("get", "repo") == 104.0
    assert r.cost_ratio("get", "repo") == 1.04
    assert r.cost_ratio("get", "sqlalchemy") == 3.0
    assert r.cost_ratio("concurrent", "repo") == 0.64
    assert r.cost_ratio("concurrent", "sqlalchemy") == 1.6


def test_targets_are_judged_on_the_ratios() -> None:
    """get ≤ 1.05x is met at 1.04x; concurrent needs 1.2x raw asyncpg's throughput."""
    targets = {t.text: (t.figure, t.met) for t in report().targets()}
    assert targets == {
        "repo get cost ≤ 1.05x asyncpg+attrs's": ("1.04x", True),
        "repo concurrent cost ≤ 0.833x asyncpg's default pool (throughput ≥ 1.2x)": (
            "0.80x",
            True,
        ),
        "sqlalchemy get cost ≥ 1.6x repo's (repo 1.6x faster)": ("2.88x", True),
        "sqlalchemy concurrent cost ≥ 1.6x repo's (repo 1.6x faster)": ("2.50x", True),
    }
