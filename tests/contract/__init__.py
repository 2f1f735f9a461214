"""One suite, parametrized over both backends: what MemoryDatabase shares with PostgreSQL."""
