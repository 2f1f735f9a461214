"""Medians, cost ratios, notes and targets; the terminal table, results.md, results.json, chart.png.

One convention everywhere: the **cost ratio** of a system on a workload is its
cost (time per operation, i.e. 1 / throughput) divided by asyncpg+attrs's, on
the medians: above 1 means slower than asyncpg+attrs, below 1 faster. A
system that cannot do a workload shows "n/a", one whose run failed shows
"failed", each with its reason in a numbered note under the table: never a
figure it did not earn.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

__all__ = ["WORKLOADS", "Note", "Report", "Target", "Workload"]


@attrs.frozen
class Workload:
    name: str
    unit: str
    lower_is_better: bool  # the unit is a cost (µs/op), not a throughput
    what: str


WORKLOADS = {
    w.name: w
    for w in (
        Workload("get", "µs/op", True, "get by key, sequential, on one held connection"),
        Workload("pool_get", "µs/op", True, "get by key, sequential, each on the pool"),
        Workload("concurrent10", "ops/s", False, "gets by 10 concurrent tasks on a pool of 10"),
        Workload("concurrent100", "ops/s", False, "gets by 100 concurrent tasks on a pool of 10"),
        Workload("fetch10k", "rows/s", False, "fetch 10,000 rows by id range"),
        Workload("insert100k", "rows/s", False, "bulk insert (COPY / add_many / ORM bulk)"),
        Workload("upsert100k", "rows/s", False, "bulk upsert, half the rows new"),
        Workload("stream", "rows/s", False, "stream every row through a server-side cursor"),
        Workload("savepoint", "txn/s", False, "transactions with a failing savepoint"),
    )
}

REPO, ASYNCPG, SQLA_CORE, SQLA_ORM = "repo", "asyncpg", "sqla-core", "sqla-orm"
RSS_LIMIT_MIB = 16.0
# The most repo may cost, as a ratio to the yardstick's cost (issue 19).
AT_MOST = {
    "get": (1.03, ""),
    "fetch10k": (1.03, ""),
    "insert100k": (1 / 0.95, "add_many throughput ≥ 0.95x COPY's"),
    "stream": (1.03, ""),
    "savepoint": (1.03, ""),
}
# repo's throughput as a multiple of raw asyncpg's default pool (issue 19).
AT_LEAST_TIMES_ASYNCPG = {"concurrent10": 3.0, "concurrent100": 5.0}
# "A single task's sequential gets no slower than now": repo's pool_get cost
# ratio to raw asyncpg's default pool, measured before coalesced lookups
# (3 rounds of --only pool_get on the development machine), with 5% for noise.
POOL_GET_NOW = 0.77
POOL_GET_NOISE = 1.05
ORM_FACTOR = 2.0  # repo at least this much faster than SQLAlchemy's ORM


@attrs.frozen
class Target:
    text: str
    figure: str
    met: bool | None  # None: reported, no target


@attrs.frozen
class Note:
    kind: str  # "n/a" or "failed" (no figure), or "note" (a figure with a caveat)
    reason: str


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@attrs.define
class Report:
    """Every sample of a run, and what follows from them."""

    systems: tuple[str, ...]
    yardstick: str
    meta: dict[str, Any]
    # samples[workload][system]: the figure (in the workload's unit) of each run
    samples: dict[str, dict[str, list[float]]] = attrs.Factory(dict)
    rss: dict[str, list[float]] = attrs.Factory(dict)  # stream: peak RSS growth (MiB)
    # notes[workload][system]: why a cell holds no figure, or a caveat on its figure
    notes: dict[str, dict[str, Note]] = attrs.Factory(dict)

    def add(self, workload: str, system: str, figure: float) -> None:
        self.samples.setdefault(workload, {}).setdefault(system, []).append(figure)

    def note(self, workload: str, system: str, kind: str, reason: str) -> None:
        """Record why `system` has no figure on `workload`, or a caveat on its figure.

        The first reason is kept, but a reason for no figure replaces a caveat.
        """
        notes = self.notes.setdefault(workload, {})
        current = notes.get(system)
        if current is None or (current.kind == "note" and kind != "note"):
            notes[system] = Note(kind, reason)

    def median(self, workload: str, system: str) -> float:
        if self.failed(workload, system):
            return float("nan")
        return _median(self.samples.get(workload, {}).get(system, []))

    def failed(self, workload: str, system: str) -> bool:
        note = self.notes.get(workload, {}).get(system)
        return note is not None and note.kind in ("n/a", "failed")

    def cost_ratio(self, workload: str, system: str, against: str | None = None) -> float:
        """`system`'s cost on `workload` over `against`'s (default: the yardstick); nan if
        either has no figure."""
        mine = self.median(workload, system)
        theirs = self.median(workload, against or self.yardstick)
        if WORKLOADS[workload].lower_is_better:
            return mine / theirs
        return theirs / mine

    def rss_growth(self, system: str) -> float:
        return _median(self.rss.get(system, []))

    @property
    def workloads(self) -> list[str]:
        return [w for w in WORKLOADS if w in self.samples or w in self.notes]

    def has(self, *systems: str) -> bool:
        return all(s in self.systems for s in systems)

    # -- targets --------------------------------------------------------

    def targets(self) -> list[Target]:
        """The targets for repo, each judged on a cost ratio (lower is faster)."""
        out: list[Target] = []
        if not self.has(REPO):
            return out
        y = self.yardstick
        for w in self.workloads:
            if w in AT_MOST and self.has(y):
                limit, aka = AT_MOST[w]
                text = f"repo {w} cost ≤ {limit:.3g}x {y}'s" + (f" ({aka})" if aka else "")
                out.append(self._judge(text, w, REPO, y, lambda r, lim=limit: r <= lim))
            if w == "stream" and REPO in self.rss:
                g = self.rss_growth(REPO)
                text = f"repo stream peak RSS growth ≤ {RSS_LIMIT_MIB:.0f} MiB"
                out.append(Target(text, f"{g:.1f} MiB", g <= RSS_LIMIT_MIB))
            if w in AT_LEAST_TIMES_ASYNCPG and self.has(ASYNCPG):
                k = AT_LEAST_TIMES_ASYNCPG[w]
                text = f"repo {w} cost ≤ {1 / k:.3g}x asyncpg's default pool (throughput ≥ {k:g}x)"
                out.append(self._judge(text, w, REPO, ASYNCPG, lambda r, k=k: r <= 1 / k))
            if w == "pool_get" and self.has(ASYNCPG):
                limit = POOL_GET_NOW * POOL_GET_NOISE
                text = (
                    f"repo pool_get no slower than before coalescing: cost ≤ {limit:.2f}x "
                    f"asyncpg's default pool ({POOL_GET_NOW:.2f}x then, +5% noise)"
                )
                out.append(self._judge(text, w, REPO, ASYNCPG, lambda r, lim=limit: r <= lim))
            if w == "upsert100k" and self.has(SQLA_CORE):
                text = "repo upsert100k cost beside SQLAlchemy Core's on_conflict_do_update"
                out.append(self._judge(text, w, REPO, SQLA_CORE, None))
        if self.has(SQLA_ORM):
            for w in self.workloads:
                text = f"sqla-orm {w} cost ≥ {ORM_FACTOR:g}x repo's (repo {ORM_FACTOR:g}x faster)"
                out.append(self._judge(text, w, SQLA_ORM, REPO, lambda r: r >= ORM_FACTOR))
        return out

    def _judge(self, text: str, workload: str, system: str, against: str, test: Any) -> Target:
        for who in (system, against):
            note = self.notes.get(workload, {}).get(who)
            if note is not None and note.kind != "note":
                return Target(text, f"{who} {note.kind}", None if test is None else False)
        r = self.cost_ratio(workload, system, against)
        if math.isnan(r):
            return Target(text, "no figure", None if test is None else False)
        return Target(text, f"{r:.2f}x", None if test is None else bool(test(r)))

    # -- output ---------------------------------------------------------

    def footnotes(self) -> tuple[list[tuple[str, Note]], dict[tuple[str, str], int]]:
        """The notes, numbered in table order, one number per system and reason:
        ``[(who, note)]``, and the number of each (workload, system) cell."""
        numbers: dict[tuple[str, str, str], int] = {}
        cells: dict[tuple[str, str], int] = {}
        where: dict[int, list[str]] = {}
        notes: dict[int, Note] = {}
        for w in self.workloads:
            for s in self.systems:
                note = self.notes.get(w, {}).get(s)
                if note is None:
                    continue
                n = numbers.setdefault((s, note.kind, note.reason), len(numbers) + 1)
                cells[w, s] = n
                where.setdefault(n, []).append(w)
                notes[n] = note
        listed = [(f"{s}, {', '.join(where[n])}", notes[n]) for (s, _k, _r), n in numbers.items()]
        return listed, cells

    def _cell(self, workload: str, system: str, sep: str = " ") -> str:
        _, marks = self.footnotes()
        mark = f" [{marks[workload, system]}]" if (workload, system) in marks else ""
        note = self.notes.get(workload, {}).get(system)
        if note is not None and note.kind != "note":
            return f"{note.kind}{mark}"
        if system not in self.samples.get(workload, {}):
            return "-"
        value = self.median(workload, system)
        figure = f"{value:,.1f}" if WORKLOADS[workload].lower_is_better else f"{value:,.0f}"
        ratio = self.cost_ratio(workload, system)
        if self.yardstick not in self.systems or math.isnan(ratio):
            return figure + mark
        return f"{figure}{sep}({ratio:.2f}x){mark}"

    def _spread(self, workload: str, system: str) -> str:
        values = self.samples.get(workload, {}).get(system, [])
        if not values or self.failed(workload, system):
            return "-"
        return f"{max(values) / min(values):.2f}x"

    def rows(self, sep: str = " ") -> list[list[str]]:
        rows = []
        for w in self.workloads:
            wl = WORKLOADS[w]
            sizes = self.meta.get("sizes", {}).get(w, "")
            rows.append(
                [
                    f"{w}{sep}({sizes})" if sizes else w,
                    wl.unit,
                    *(self._cell(w, s, sep) for s in self.systems),
                ]
            )
        if self.rss:
            rows.append(
                [
                    "stream peak RSS growth",
                    "MiB",
                    *(f"{self.rss_growth(s):.1f}" if s in self.rss else "-" for s in self.systems),
                ]
            )
        return rows

    def markdown(self) -> str:
        m = self.meta
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        lines = [
            f"Run of {m['date']} on {m['machine']}: PostgreSQL {m['postgresql']} "
            f"(synchronous_commit={m.get('synchronous_commit', '?')}), Python {m['python']}, "
            f"{versions}, event loop {m['loop']}; {m['rows']:,} rows in the table, "
            f"{m['rounds']} round{'s' if m['rounds'] != 1 else ''}, medians; load average "
            f"{m.get('load_average_at_start', '?')} at the start, "
            f"{m.get('load_average_at_end', '?')} at the end.",
            "",
        ]
        return "\n".join(lines) + "\n" + self.markdown_table()

    def markdown_table(self) -> str:
        """The table, its notes, the spread of the rounds and the targets, in Markdown."""
        m = self.meta
        lines = [
            f"Each cell: the median, then its cost ratio to {self.yardstick} "
            "(time per operation over theirs: above 1.00x is slower).",
            "",
            "| workload | unit | " + " | ".join(self.systems) + " |",
            "|---|---|" + "---|" * len(self.systems),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
        notes, _ = self.footnotes()
        if notes:
            lines.append("")
            lines += [
                f"{n}. {who}: {note.kind}: {note.reason}" for n, (who, note) in enumerate(notes, 1)
            ]
        if m["rounds"] > 1:
            lines += [
                "",
                "The spread of the rounds: the slowest sample's cost over the fastest's.",
                "",
                "| workload | " + " | ".join(self.systems) + " |",
                "|---|" + "---|" * len(self.systems),
            ]
            lines += [
                f"| {w} | " + " | ".join(self._spread(w, s) for s in self.systems) + " |"
                for w in self.workloads
            ]
        targets = self.targets()
        if targets:
            lines += ["", "| target | figure | met |", "|---|---|---|"]
            lines += [f"| {t.text} | {t.figure} | {_met(t.met, '**no**')} |" for t in targets]
        return "\n".join(lines) + "\n"

    def data(self) -> dict[str, Any]:
        workloads: dict[str, Any] = {}
        for w in self.workloads:
            systems: dict[str, Any] = {}
            for s in self.systems:
                values = self.samples.get(w, {}).get(s)
                note = self.notes.get(w, {}).get(s)
                if values is None and note is None:
                    continue
                entry: dict[str, Any] = {"samples": values or []}
                if note is not None:
                    entry["note"] = attrs.asdict(note)
                if not self.failed(w, s):
                    entry["median"] = self.median(w, s)
                    ratio = self.cost_ratio(w, s)
                    if not math.isnan(ratio):
                        entry["cost_ratio"] = ratio
                if w == "stream" and s in self.rss:
                    entry["rss_growth_mib"] = self.rss[s]
                systems[s] = entry
            workloads[w] = {"unit": WORKLOADS[w].unit, "systems": systems}
        return {
            "meta": self.meta,
            "yardstick": self.yardstick,
            "convention": (
                "cost ratio: a system's time per operation over the yardstick's; >1 is slower"
            ),
            "workloads": workloads,
            "targets": [attrs.asdict(t) for t in self.targets()],
        }

    def print(self, console: Console) -> None:
        table = Table(title=f"cost ratio to {self.yardstick}: >1.00x is slower")
        for header in ("workload", "unit", *self.systems):
            table.add_column(header, justify="left" if header in ("workload", "unit") else "right")
        for row in self.rows(sep="\n"):
            table.add_row(*row)
        console.print(table)
        for n, (who, note) in enumerate(self.footnotes()[0], 1):
            console.print(f"[{n}] {who}: {note.kind}: {note.reason}", highlight=False)
        targets = self.targets()
        if targets:
            t = Table(title="targets")
            for header in ("target", "figure", "met"):
                t.add_column(header)
            for target in targets:
                t.add_row(target.text, target.figure, _met(target.met, "[red]not met[/]"))
            console.print(t)

    def chart(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        workloads = self.workloads
        systems = self.systems
        width = 0.8 / len(systems)
        fig, ax = plt.subplots(figsize=(14, 6), dpi=100)
        for i, s in enumerate(systems):
            ratios = [self.cost_ratio(w, s) for w in workloads]
            xs = [x + (i - (len(systems) - 1) / 2) * width for x in range(len(workloads))]
            bars = ax.bar(xs, ratios, width, label=s)
            ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=2, rotation=90)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_ylabel(f"cost ratio to {self.yardstick} (log scale, lower is faster)")
        ax.set_title(
            f"{self.meta['rows']:,} rows, {self.meta['rounds']} round(s), medians "
            f"({self.meta['date'][:10]}, {self.meta['loop']}); missing bar: n/a or failed"
        )
        ax.legend(fontsize=8, ncols=4)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    def write(self, out: Path) -> dict[str, Path]:
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "md": out / "results.md",
            "json": out / "results.json",
            "png": out / "chart.png",
        }
        files["md"].write_text(self.markdown())
        files["json"].write_text(json.dumps(self.data(), indent=2, allow_nan=False) + "\n")
        if self.yardstick in self.systems:
            self.chart(files["png"])
        return files


def _met(met: bool | None, no: str) -> str:
    if met is None:
        return "reported"
    return "yes" if met else no
