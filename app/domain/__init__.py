"""Pure domain code: no I/O, no SQLAlchemy, no Strawberry, no httpx."""
