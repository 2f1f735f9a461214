"""The benchmark suite, end to end, at toy sizes: every workload on every system."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from bench._report import WORKLOADS
from bench._systems import SYSTEMS
from repo._dsn import with_database
from tests.conftest import ROOT, drop_database


def test_quick_bench_writes_every_figure(server_dsn: str, tmp_path: Path) -> None:
    """`python -m bench --quick` seeds its database, runs all, and writes md, json and png."""
    database = f"repo_bench_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "--quick",
                "--rows=2000",
                f"--database={database}",
                f"--out={tmp_path}",
            ],
            cwd=ROOT,
            env=dict(os.environ, DATABASE_URL=server_dsn),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    finally:
        drop_database(server_dsn, with_database(server_dsn, database))

    data = json.loads((tmp_path / "results.json").read_text())
    assert list(WORKLOADS) == list(data["workloads"])
    for name, workload in data["workloads"].items():
        assert list(SYSTEMS) == list(workload["systems"]), name
        for system, figures in workload["systems"].items():
            assert figures["median"] > 0, (name, system)
            assert len(figures["samples"]) == 1
        assert workload["systems"]["asyncpg+attrs"]["cost_ratio"] == 1.0
    assert data["meta"]["rows"] == 2000
    assert all(
        len(data["workloads"]["stream"]["systems"][s]["rss_growth_mib"]) == 1 for s in SYSTEMS
    )
    assert {t["met"] for t in data["targets"]} <= {True, False}
    assert len(data["targets"]) == 6 + 1 + len(WORKLOADS)

    table = (tmp_path / "results.md").read_text()
    assert "| workload |" in table
    assert all(f" {system} " in table for system in SYSTEMS)
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
