"""Free text from clients: bounded, and without control characters (PostgreSQL
refuses NUL in text columns; nobody needs a bell in a description)."""

from __future__ import annotations

from app.domain.errors import InvalidInput

# Line breaks and tabs are fine in a description; other control characters are not.
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def check_text(value: str | None, field: tuple[str, ...], limit: int) -> str | None:
    if value is None:
        return None
    name = field[-1]
    if len(value) > limit:
        raise InvalidInput(f"{name} is at most {limit} characters", field)
    if any((ord(c) < 32 and c not in _ALLOWED_CONTROLS) or ord(c) == 127 for c in value):
        raise InvalidInput(f"{name} contains control characters", field)
    return value
