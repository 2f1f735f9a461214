"""The side-by-side benchmarks: raw asyncpg, asyncpg + attrs by hand, repo, SQLAlchemy ORM.

Run them with ``python3 tasks.py bench`` (or ``python -m bench`` in the venv);
docs/performance.md says what is measured and how.
"""
