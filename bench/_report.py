"""Medians, cost ratios and targets; the terminal table, results.md, results.json, chart.png.

One convention everywhere: the **cost ratio** of a system on a workload is its
cost (time per operation, i.e. 1 / throughput) divided by asyncpg+attrs's, on
the medians: above 1 means slower than asyncpg+attrs, below 1 faster.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

__all__ = ["WORKLOADS", "Report", "Workload"]


@attrs.frozen
class Workload:
    name: str
    unit: str
    lower_is_better: bool  # the unit is a cost (µs/op), not a throughput
    what: str


WORKLOADS = {
    w.name: w
    for w in (
        Workload("get", "µs/op", True, "get by key, sequential"),
        Workload("concurrent", "ops/s", False, "gets by 10 concurrent tasks on a pool of 10"),
        Workload("fetch10k", "rows/s", False, "fetch 10,000 rows by id range"),
        Workload("insert100k", "rows/s", False, "bulk insert (COPY / add_many / ORM insert)"),
        Workload("stream", "rows/s", False, "stream every row through a server-side cursor"),
        Workload("savepoint", "txn/s", False, "transactions with a failing savepoint"),
    )
}

REPO, ASYNCPG, SQLALCHEMY = "repo", "asyncpg", "sqlalchemy"
RSS_LIMIT_MIB = 16.0
# The most repo may cost, as a ratio to the yardstick's cost, per workload.
AT_MOST = {
    "get": (1.05, ""),
    "fetch10k": (1.05, ""),
    "insert100k": (1 / 0.95, "add_many throughput ≥ 0.95x COPY's"),
    "stream": (1 / 0.95, "throughput ≥ 0.95x the cursor's"),
    "savepoint": (1.05, ""),
}


@attrs.frozen
class Target:
    text: str
    figure: str
    met: bool


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

    def add(self, workload: str, system: str, figure: float) -> None:
        self.samples.setdefault(workload, {}).setdefault(system, []).append(figure)

    def median(self, workload: str, system: str) -> float:
        return _median(self.samples.get(workload, {}).get(system, []))

    def cost_ratio(self, workload: str, system: str, against: str | None = None) -> float:
        """`system`'s cost on `workload` over `against`'s (default: the yardstick)."""
        mine = self.median(workload, system)
        theirs = self.median(workload, against or self.yardstick)
        if WORKLOADS[workload].lower_is_better:
            return mine / theirs
        return theirs / mine

    def rss_growth(self, system: str) -> float:
        return _median(self.rss.get(system, []))

    @property
    def workloads(self) -> list[str]:
        return [w for w in WORKLOADS if w in self.samples]

    def has(self, *systems: str) -> bool:
        return all(s in self.systems for s in systems)

    # -- targets --------------------------------------------------------

    def targets(self) -> list[Target]:
        """The project's targets for repo, each judged on a cost ratio (lower is faster)."""
        out: list[Target] = []
        if not self.has(REPO):
            return out
        y = self.yardstick
        for w in self.workloads:
            if w in AT_MOST and self.has(y):
                limit, aka = AT_MOST[w]
                r = self.cost_ratio(w, REPO)
                text = f"repo {w} cost ≤ {limit:.4g}x {y}'s" + (f" ({aka})" if aka else "")
                out.append(Target(text, f"{r:.2f}x", r <= limit))
            if w == "stream" and REPO in self.rss:
                g = self.rss_growth(REPO)
                text = f"repo stream peak RSS growth ≤ {RSS_LIMIT_MIB:.0f} MiB"
                out.append(Target(text, f"{g:.1f} MiB", g <= RSS_LIMIT_MIB))
            if w == "concurrent" and self.has(ASYNCPG):
                r = self.cost_ratio(w, REPO, ASYNCPG)
                text = "repo concurrent cost ≤ 0.833x asyncpg's default pool (throughput ≥ 1.2x)"
                out.append(Target(text, f"{r:.2f}x", r <= 1 / 1.2))
        if self.has(SQLALCHEMY):
            for w in self.workloads:
                r = self.cost_ratio(w, SQLALCHEMY, REPO)
                text = f"sqlalchemy {w} cost ≥ 1.6x repo's (repo 1.6x faster)"
                out.append(Target(text, f"{r:.2f}x", r >= 1.6))
        return out

    # -- output ---------------------------------------------------------

    def _cell(self, workload: str, system: str, sep: str = " ") -> str:
        if system not in self.samples.get(workload, {}):
            return "-"
        value = self.median(workload, system)
        figure = f"{value:,.1f}" if WORKLOADS[workload].lower_is_better else f"{value:,.0f}"
        if self.yardstick not in self.systems:
            return figure
        return f"{figure}{sep}({self.cost_ratio(workload, system):.2f}x)"

    def _spread(self, workload: str, system: str) -> str:
        values = self.samples.get(workload, {}).get(system, [])
        if not values:
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
        lines = [
            f"Run of {m['date']} on {m['machine']}: PostgreSQL {m['postgresql']}, "
            f"Python {m['python']}, asyncpg {m['asyncpg']}, SQLAlchemy {m['sqlalchemy']}, "
            f"repo {m['repo']}, event loop {m['loop']}; {m['rows']:,} rows in the table, "
            f"{m['rounds']} round{'s' if m['rounds'] != 1 else ''}, medians; load average "
            f"{m.get('load_average_at_start', '?')} at the start, "
            f"{m.get('load_average_at_end', '?')} at the end.",
            "",
            f"Each cell: the median, then its cost ratio to {self.yardstick} "
            "(time per operation over theirs: above 1.00x is slower).",
            "",
            "| workload | unit | " + " | ".join(self.systems) + " |",
            "|---|---|" + "---|" * len(self.systems),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
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
            lines += [
                f"| {t.text} | {t.figure} | {'yes' if t.met else '**no**'} |" for t in targets
            ]
        return "\n".join(lines) + "\n"

    def data(self) -> dict[str, Any]:
        workloads: dict[str, Any] = {}
        for w in self.workloads:
            systems: dict[str, Any] = {}
            for s, values in self.samples[w].items():
                entry: dict[str, Any] = {"samples": values, "median": self.median(w, s)}
                if self.yardstick in self.samples[w]:
                    entry["cost_ratio"] = self.cost_ratio(w, s)
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
        targets = self.targets()
        if targets:
            t = Table(title="targets")
            for header in ("target", "figure", "met"):
                t.add_column(header)
            for target in targets:
                met = "[green]met[/]" if target.met else "[red]not met[/]"
                t.add_row(target.text, target.figure, met)
            console.print(t)

    def chart(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        workloads = self.workloads
        systems = self.systems
        width = 0.8 / len(systems)
        fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
        for i, s in enumerate(systems):
            ratios = [
                self.cost_ratio(w, s) if s in self.samples[w] else float("nan") for w in workloads
            ]
            xs = [x + (i - (len(systems) - 1) / 2) * width for x in range(len(workloads))]
            bars = ax.bar(xs, ratios, width, label=s)
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_ylabel(f"cost ratio to {self.yardstick} (lower is faster)")
        ax.set_title(
            f"{self.meta['rows']:,} rows, {self.meta['rounds']} round(s), medians "
            f"({self.meta['date'][:10]}, {self.meta['loop']})"
        )
        ax.legend()
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
        files["json"].write_text(json.dumps(self.data(), indent=2) + "\n")
        if self.yardstick in self.systems:
            self.chart(files["png"])
        return files
