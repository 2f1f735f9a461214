"""The side-by-side benchmarks: raw asyncpg, asyncpg + attrs by hand, repo, SQLAlchemy Core
and ORM, Tortoise ORM, Piccolo, and pgbench as the server's ceiling for lookups.

Run them with ``python3 tasks.py bench`` (or ``python -m bench`` in the venv);
``python -m bench.observe`` measures what observability costs.
docs/performance.md says what is measured and how.
"""
