"""Alembic migrations, shipped inside the package so a non-editable install can run them."""
