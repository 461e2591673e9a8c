"""Storage: SQLAlchemy 2 async tables, the engine, repositories and migrations."""
