"""The PostgreSQL backend: `Database`, its pool and sessions, on asyncpg.

The backend-neutral core (``repo/_*.py``) reaches it only through the
Protocols of ``repo/_contract.py``; see docs/contributing.md for the map.
"""

from .database import Database

__all__ = ["Database"]
