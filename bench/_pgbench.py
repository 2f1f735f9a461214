"""``pgbench -S`` on the bench's own table: the server's ceiling for lookups by key.

Prepared statements (``-M prepared``), the same SELECT as the Python systems,
random ids over the table, the same server; each pgbench client is one
connection running its lookups back to back. Its own figure is used (the
rate without connection time), not a wall clock around the process.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile

from ._model import SELECT

__all__ = ["PGBENCH", "available", "lookups"]

PGBENCH = "pgbench"
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def available() -> str | None:
    """Why pgbench cannot run here, or None if it can."""
    if shutil.which(PGBENCH) is None:
        return "pgbench is not installed (it comes with the PostgreSQL client tools)"
    return None


async def lookups(dsn: str, rows: int, clients: int, count: int) -> float:
    """Lookups per second: `count` lookups by key over `clients` connections."""
    script = f"\\set id random(1, {rows})\n{SELECT} WHERE id = :id;\n"
    per_client = max(1, count // clients)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        proc = await asyncio.create_subprocess_exec(
            PGBENCH,
            "--no-vacuum",
            "--protocol=prepared",
            f"--file={f.name}",
            f"--client={clients}",
            f"--jobs={min(clients, os.cpu_count() or 1)}",
            f"--transactions={per_client}",
            dsn,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
    finally:
        os.unlink(f.name)
    found = _TPS.search(out.decode())
    if proc.returncode or found is None:
        msg = f"pgbench exited with {proc.returncode}: {err.decode().strip()[-300:]}"
        raise RuntimeError(msg)
    return float(found[1])
