"""SQL storage on SQLite (embedded default) and PostgreSQL, through SQLAlchemy Core."""
