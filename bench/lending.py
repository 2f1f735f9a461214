"""The guide's lending service under load: ``python -m bench.lending``.

    python -m bench.lending [--clients N] [--rounds R] [--books B] [--copies C]
                            [--modes skip_locked,naive] [--pool P] [--quick]
                            [--database NAME] [--json PATH]

The service is the example of docs/project.md (docs/examples/lending), run
as its page says: a copy of the project is migrated with ``repo db init``,
``revision --autogenerate`` and ``upgrade`` on its own database
(``repo_bench_lending`` on $DATABASE_URL's server, else the embedded one),
then served by uvicorn on a loopback port, in a process of its own. `--clients`
members, each an ``httpx.AsyncClient`` task, borrow copies of `--books`
popular books (`--copies` each, so the same few rows are fought over) and
give them back, `--rounds` times each.

Each mode is a fresh server on emptied tables: ``skip_locked`` claims a copy
with ``FOR UPDATE SKIP LOCKED`` at READ COMMITTED, ``naive`` takes the first
available copy without a lock under SERIALIZABLE, retrying conflicts with
`run_in_unit` (docs/project.md says why). Afterwards every answer is checked
against the database: each loan answered 201 is stored as answered, each
return answered 200 is closed, no copy was ever lent to two members at once,
nothing is left half done, and every failure is a status the service maps an
error to. Reported: requests/s, p50/p99 latency, loans, refusals, conflicts,
retries and retries run out. The exit status is 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx

from repo._postgres.dsn import mask_dsn, resolve_dsn, with_database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "lending"
DATABASE = "repo_bench_lending"
MODES = ("skip_locked", "naive")
# What each failure status may say: the errors the service maps to it.
MAPPED = {
    404: {"NotFound"},
    409: {
        "NoCopyAvailable",
        "LoanLimitReached",
        "AlreadyReturned",
        "UniqueViolation",
        "StaleEntity",
    },
    503: {"SerializationFailure", "DeadlockDetected", "PoolTimeout", "LockNotAvailable"},
}
# Refusals that are the library's answer, not a conflict between requests.
REFUSALS = {"NoCopyAvailable"}
EXHAUSTED = {"SerializationFailure", "DeadlockDetected"}


@attrs.frozen
class Sizes:
    clients: int
    rounds: int
    books: int
    copies: int
    hold: float  # at most this long (s) between a loan and its return
    pool: int
    deadline: float  # seconds: the load stops issuing requests after this


FULL = Sizes(clients=32, rounds=25, books=4, copies=4, hold=0.005, pool=10, deadline=120.0)
QUICK = Sizes(clients=12, rounds=6, books=2, copies=3, hold=0.002, pool=4, deadline=30.0)


@attrs.frozen
class Answer:
    """One request and what came back (status 0: no answer at all)."""

    op: str  # "lend" or "return"
    member_id: int
    status: int
    error: str | None
    started: float
    ended: float
    body: dict[str, Any]
    retries: int = 0

    @property
    def latency(self) -> float:
        return self.ended - self.started


# -- the project: a copy of the example, migrated as the guide says ------------


def make_project(directory: Path, dsn: str) -> None:
    """Copy the example into `directory` and migrate `dsn` to its head."""
    from repo.migrations import init_project, run, upgrade

    shutil.copytree(
        EXAMPLE, directory / "lending", ignore=shutil.ignore_patterns("tests", "__pycache__")
    )
    init_project(directory, tables="lending.tables:TABLES")
    # Nobody reads the bench's revision: no need to run ruff over it.
    ini = directory / "alembic.ini"
    ini.write_text(ini.read_text().replace("hooks = repo_format", "hooks ="))
    run("revision", dsn, config=directory, message="lending", autogenerate=True, rev_id="0001")
    upgrade(dsn, "head", config=directory)


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def seed(dsn: str, sizes: Sizes) -> tuple[list[int], list[int]]:
    """Empty the tables, then add one member per client and the popular books."""
    from lending import services
    from lending.repositories import LendingUnit
    from lending.tables import MemberTier, id_of
    from repo import Database

    await _admin(dsn, "TRUNCATE loan, copy, book, member RESTART IDENTITY CASCADE")
    async with Database.connect(dsn, max_size=2) as db, LendingUnit(db) as uow:
        members = [
            id_of(
                (await services.join(uow, f"m{i}", f"m{i}@example.org", MemberTier.GOLD)).member_id
            )
            for i in range(sizes.clients)
        ]
        books = []
        for b in range(sizes.books):
            book, _ = await services.add_book(uow, f"Popular {b}", f"97800000{b:05}", sizes.copies)
            books.append(id_of(book.book_id))
    return members, books


# -- the server -----------------------------------------------------------------


def serve(project: str, port: int, mode: str, pool: int) -> None:
    """Run the example's app under uvicorn (the child process's whole life)."""
    import uvicorn

    sys.path.insert(0, project)
    from lending.app import create_app
    from repo import Database

    app = create_app(functools.partial(Database.connect, max_size=pool), locks=mode != "naive")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_ready(base: str, server: asyncio.subprocess.Process, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if server.returncode is not None:
                msg = f"the lending server exited with {server.returncode} before serving"
                raise RuntimeError(msg)
            try:
                if (await client.get("/books/1")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    msg = f"the lending server did not answer within {within:.0f}s"
    raise RuntimeError(msg)


# -- the load ---------------------------------------------------------------------


async def _call(
    client: httpx.AsyncClient, op: str, member_id: int, url: str, body: dict[str, Any] | None
) -> Answer:
    started = time.perf_counter()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        return Answer(op, member_id, 0, type(exc).__name__, started, time.perf_counter(), {})
    ended = time.perf_counter()
    data = response.json() if response.content else {}
    error = data.get("error") if response.status_code >= 400 else None
    retries = int(response.headers.get("X-Retries", "0"))
    return Answer(op, member_id, response.status_code, error, started, ended, data, retries)


async def member(
    client: httpx.AsyncClient,
    member_id: int,
    *,
    books: Sequence[int],
    sizes: Sizes,
    stop_at: float,
    answers: list[Answer],
) -> None:
    """One client: borrow a popular book, keep it a moment, give it back; `rounds` times."""
    for _ in range(sizes.rounds):
        if time.perf_counter() > stop_at:
            return
        book_id = random.choice(books)
        lent = await _call(
            client, "lend", member_id, "/loans", {"member_id": member_id, "book_id": book_id}
        )
        answers.append(lent)
        if lent.status != 201:
            await asyncio.sleep(random.uniform(0, sizes.hold))
            continue
        await asyncio.sleep(random.uniform(0, sizes.hold))
        loan_id = lent.body["loan_id"]
        answers.append(await _call(client, "return", member_id, f"/loans/{loan_id}/return", None))


async def load(
    base: str, members: Sequence[int], books: Sequence[int], sizes: Sizes
) -> tuple[list[Answer], float]:
    answers: list[Answer] = []
    limits = httpx.Limits(max_connections=sizes.clients, max_keepalive_connections=sizes.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:
        started = time.perf_counter()
        stop_at = started + sizes.deadline
        await asyncio.gather(
            *(
                member(client, m, books=books, sizes=sizes, stop_at=stop_at, answers=answers)
                for m in members
            )
        )
        took = time.perf_counter() - started
    return answers, took


# -- the checks -----------------------------------------------------------------


async def check(dsn: str, answers: Sequence[Answer]) -> list[str]:
    """Every way the answers and the database disagree; empty when all is well."""
    problems: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        rows = {r["loan_id"]: r for r in await conn.fetch("SELECT * FROM loan")}
        doubled = await conn.fetch(
            "SELECT copy_id, count(*) AS n FROM loan WHERE returned_at IS NULL "
            "GROUP BY copy_id HAVING count(*) > 1"
        )
        astray = await conn.fetch(
            "SELECT c.copy_id FROM copy c WHERE c.on_loan <> EXISTS "
            "(SELECT 1 FROM loan l WHERE l.copy_id = c.copy_id AND l.returned_at IS NULL)"
        )
    finally:
        await conn.close()

    lent = [a for a in answers if a.op == "lend" and a.status == 201]
    for a in lent:
        row = rows.get(a.body["loan_id"])
        if row is None or (row["member_id"], row["copy_id"]) != (a.member_id, a.body["copy_id"]):
            problems.append(f"loan {a.body['loan_id']} answered 201 is not stored as answered")
    if len(rows) != len(lent):
        problems.append(f"{len(rows)} loans stored, {len(lent)} answered 201")
    for a in answers:
        if a.op == "return" and a.status == 200:
            row = rows.get(a.body["loan_id"])
            if row is None or row["returned_at"] is None:
                problems.append(f"loan {a.body['loan_id']} answered returned is still open")
        elif (a.status >= 300 or a.status == 0) and a.error not in MAPPED.get(a.status, set()):
            problems.append(f"{a.op} answered {a.status} {a.error}: not a mapped error")
    problems += [f"copy {r['copy_id']} has {r['n']} open loans" for r in doubled]
    problems += [f"copy {r['copy_id']}'s on_loan disagrees with its loans" for r in astray]
    problems += overlaps(answers)
    return problems


def overlaps(answers: Sequence[Answer]) -> list[str]:
    """Copies lent to two members at once, as the clients saw it.

    A copy is surely lent from the moment its 201 arrived until its return
    was sent; two such spans of one copy that overlap are a double loan.
    """
    lends = {a.body["loan_id"]: a for a in answers if a.op == "lend" and a.status == 201}
    spans: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for a in answers:
        if a.op == "return" and a.status == 200:
            lent = lends[a.body["loan_id"]]
            spans[lent.body["copy_id"]].append((lent.ended, a.started, a.body["loan_id"]))
    found = []
    for copy_id, held in spans.items():
        held.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(held):
            if start < end:
                found.append(f"copy {copy_id} lent twice at once: loans {first} and {second}")
    return found


# -- the figures ------------------------------------------------------------------


def figures(
    mode: str, answers: Sequence[Answer], took: float, problems: list[str]
) -> dict[str, Any]:
    latencies = sorted(a.latency for a in answers)
    errors = Counter(a.error for a in answers if a.error is not None)
    lends = [a for a in answers if a.op == "lend"]
    exhausted = sum(n for e, n in errors.items() if e in EXHAUSTED)
    return {
        "mode": mode,
        "requests": len(answers),
        "seconds": round(took, 3),
        "requests_per_s": round(len(answers) / took, 1) if took else 0.0,
        "p50_ms": round(1000 * _quantile(latencies, 0.50), 2),
        "p99_ms": round(1000 * _quantile(latencies, 0.99), 2),
        "lend_p99_ms": round(1000 * _quantile(sorted(a.latency for a in lends), 0.99), 2),
        "lent": sum(a.status == 201 for a in lends),
        "returned": sum(a.op == "return" and a.status == 200 for a in answers),
        "no_copy": sum(n for e, n in errors.items() if e in REFUSALS),
        "conflicts": sum(n for e, n in errors.items() if e not in REFUSALS),
        "retries": sum(a.retries for a in answers),
        "exhausted": exhausted,
        "errors": dict(errors),
        "problems": problems,
    }


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def show(results: Sequence[dict[str, Any]], sizes: Sizes) -> None:
    print(
        f"lending service under load: {sizes.clients} clients x {sizes.rounds} rounds, "
        f"{sizes.books} books x {sizes.copies} copies, server pool {sizes.pool}"
    )
    head = ("mode", "requests", "req/s", "p50 ms", "p99 ms", "lent", "no copy", "conflicts",
            "retries", "exhausted", "checks")  # fmt: skip
    print(" | ".join(head))
    for r in results:
        cells = (r["mode"], r["requests"], r["requests_per_s"], r["p50_ms"], r["p99_ms"],
                 r["lent"], r["no_copy"], r["conflicts"], r["retries"], r["exhausted"],
                 "ok" if not r["problems"] else f"{len(r['problems'])} FAILED")  # fmt: skip
        print(" | ".join(str(c) for c in cells))
        for problem in r["problems"][:20]:
            print(f"  {r['mode']}: {problem}")


# -- the run ------------------------------------------------------------------------


async def run_mode(mode: str, project: Path, dsn: str, sizes: Sizes) -> dict[str, Any]:
    members, books = await seed(dsn, sizes)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.lending", "serve", str(project), str(port), mode,
        str(sizes.pool), cwd=ROOT, env=dict(os.environ, DATABASE_URL=dsn),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, server)
        answers, took = await load(base, members, books, sizes)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(server.wait(), 15)
        except TimeoutError:
            server.kill()
            await server.wait()
    return figures(mode, answers, took, await check(dsn, answers))


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["serve"]:
        where, port, mode, pool = args[1:5]
        serve(where, int(port), mode, int(pool))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.lending", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="toy sizes: a few seconds")
    parser.add_argument("--clients", type=int, help="concurrent clients, one member each")
    parser.add_argument("--rounds", type=int, help="loans (each then returned) per client")
    parser.add_argument("--books", type=int, help="popular books")
    parser.add_argument("--copies", type=int, help="copies of each book")
    parser.add_argument("--pool", type=int, help="the server's pool size")
    parser.add_argument("--modes", default=",".join(MODES), help="skip_locked,naive (default both)")
    parser.add_argument("--database", default=DATABASE, help=f"made afresh (default {DATABASE})")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    opts = parser.parse_args(args)
    modes = [m for m in opts.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes takes {', '.join(MODES)}")
    base = QUICK if opts.quick else FULL
    given = {k: getattr(opts, k) for k in ("clients", "rounds", "books", "copies", "pool")}
    sizes = attrs.evolve(base, **{k: v for k, v in given.items() if v is not None})

    server_dsn = resolve_dsn()
    dsn = with_database(server_dsn, opts.database)
    print(f"database: {mask_dsn(dsn)}", flush=True)
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{opts.database}" WITH (FORCE)',
                       f'CREATE DATABASE "{opts.database}"'))  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="lending-") as tmp:
        project = Path(tmp)
        make_project(project, dsn)
        sys.path.insert(0, str(project))
        for mode in modes:
            results.append(asyncio.run(run_mode(mode, project, dsn, sizes)))
    show(results, sizes)
    if opts.json is not None:
        opts.json.write_text(
            json.dumps({"sizes": attrs.asdict(sizes), "results": results}, indent=2)
        )
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
