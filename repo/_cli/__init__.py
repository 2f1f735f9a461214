"""The ``repo`` command: ``repo demo`` and ``repo db ...`` (Alembic, URL resolved for you)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from repo._postgres.dsn import ENV_DSN, mask_dsn
from repo.errors import ConfigurationError, RepoError

__all__ = ["main"]


def _database_note() -> str:
    env = os.environ.get(ENV_DSN)
    if env:
        return f"database: ${ENV_DSN} = {mask_dsn(env)}"
    return (
        "database: the embedded server (.repo/pgdata, or $REPO_EMBEDDED_DIR); "
        "set $DATABASE_URL to use another"
    )


def _parser() -> argparse.ArgumentParser:
    note = _database_note()
    parser = argparse.ArgumentParser(
        prog="repo",
        description=f"repo: a typed data-access layer for PostgreSQL on asyncio.\n{note}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dsn",
        help=(
            "the database to use: postgresql://user:password@host:port/database, several "
            "hosts as host1:port1,host2:port2 (default: $DATABASE_URL, else embedded; "
            "percent-encode / ? # @ in the password; it is never shown)"
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the demo on its own database repo_demo",
        description=(
            "Migrate to head, load the catalog through COPY, run queries concurrently on the\n"
            "pool, show commit, rollback and a savepoint, and stream every sku through a\n"
            "cursor. Uses its own database, repo_demo, on the server.\n" + note
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--brands", type=int, default=100, help="brands to load (default 100)")
    demo.add_argument(
        "--products", type=int, default=1_000, help="products to load (default 1,000)"
    )
    demo.add_argument("--skus", type=int, default=100_000, help="skus to load (default 100,000)")
    demo.add_argument("--json", action="store_true", help="print machine-readable figures")

    db = sub.add_parser(
        "db",
        help="migration commands (Alembic)",
        description=(
            "Alembic's commands with the database resolved like Database.connect().\n" + note
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config = argparse.ArgumentParser(add_help=False)
    # Suppressed defaults, so that --config may come before or after the command.
    config.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the project's alembic.ini, or its folder (default: ./alembic.ini)",
    )
    db.add_argument("-c", "--config", metavar="PATH", default=None, help=argparse.SUPPRESS)
    dbsub = db.add_subparsers(dest="db_command", required=True)
    init = dbsub.add_parser(
        "init",
        help="start a project's migrations: alembic.ini and migrations/ for your mappings",
        description=(
            "Write alembic.ini and migrations/ (env.py, script.py.mako, versions/) in DIR\n"
            "for the Table mappings that --tables names; never overwrites a project.\n"
            "Then: repo db revision --autogenerate -m 'first tables', and repo db upgrade."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("directory", nargs="?", default=".", metavar="DIR", help="default: here")
    init.add_argument(
        "--tables",
        required=True,
        metavar="MODULE:NAME",
        help="the mappings: a Table or a sequence of them, e.g. myapp.tables:TABLES",
    )
    timeout_help = (
        "how long to wait for a lock before failing (default: $REPO_MIGRATION_LOCK_TIMEOUT, "
        "else lock_timeout in alembic.ini, else 5s; 0 waits forever)"
    )
    up = dbsub.add_parser("upgrade", parents=[config], help="migrate up to REV (default head)")
    up.add_argument(
        "revision",
        nargs="?",
        default="head",
        metavar="REV",
        help="where to go: a revision id, head or +N (default head)",
    )
    up.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL instead of running it (no database needed; REV may be FROM:TO)",
    )
    up.add_argument("--lock-timeout", metavar="DURATION", help=timeout_help)
    down = dbsub.add_parser(
        "downgrade", parents=[config], help="migrate down to REV (base: undo everything)"
    )
    down.add_argument(
        "revision", metavar="REV", help="where to go: a revision id, -N, or base for no tables"
    )
    down.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL instead of running it (REV must be FROM:TO, e.g. 0002:0001)",
    )
    down.add_argument("--lock-timeout", metavar="DURATION", help=timeout_help)
    dbsub.add_parser("current", parents=[config], help="show the database's revision")
    dbsub.add_parser("history", parents=[config], help="list the revisions")
    dbsub.add_parser(
        "check",
        parents=[config],
        help="fail if the mappings and the migrated schema disagree (alembic check)",
    )
    rev = dbsub.add_parser("revision", parents=[config], help="make a new revision file")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument(
        "--autogenerate",
        action="store_true",
        help="fill it in from the difference between the mappings and the database",
    )
    rev.add_argument("--rev-id", help="the revision id (default: a random one)")
    return parser


# Alembic's INFO lines that say nothing about this database's revisions.
_ALEMBIC_NOISE = ("Context impl ", "Will assume ")


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_ALEMBIC_NOISE)


def _db(args: argparse.Namespace) -> None:
    try:
        from repo.migrations import init_project, run
    except ImportError as exc:
        msg = (
            f"the repo db commands need Alembic and SQLAlchemy ({exc}): "
            "pip install 'repo[migrations]'"
        )
        raise ConfigurationError(msg) from None
    if args.db_command == "init":
        for path in init_project(args.directory, tables=args.tables):
            print(f"wrote {path}")
        print(
            "next: repo db revision --autogenerate -m 'first tables', review it, "
            "then repo db upgrade"
        )
        return

    # Alembic says which revisions it runs; that is worth seeing.
    logging.getLogger("alembic").setLevel(logging.INFO)
    migration_log = logging.getLogger("alembic.runtime.migration")
    if _not_noise not in migration_log.filters:
        migration_log.addFilter(_not_noise)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    options = {
        k: v for k, v in vars(args).items() if k not in ("command", "db_command", "dsn", "config")
    }
    run(args.db_command, args.dsn, config=args.config, **options)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``repo`` console script and ``python -m repo``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            from .demo import run_demo

            asyncio.run(
                run_demo(
                    args.dsn,
                    brands=args.brands,
                    products=args.products,
                    skus=args.skus,
                    as_json=args.json,
                )
            )
        else:
            _db(args)
    except RepoError as exc:
        print(f"repo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
