"""The numbered migrations, 0001 first (Alembic skips this file)."""
