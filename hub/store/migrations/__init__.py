"""Alembic's script directory for the hub's database (run by hub/store/db.py)."""
