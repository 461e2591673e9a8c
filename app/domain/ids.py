"""Public identifiers: `pi_…` intents, `pi_…_secret_…` client secrets, and friends.

Random, URL-safe, and long enough (about 143 bits) that guessing one is hopeless.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 24
SECRET_MARK = "_secret_"


def random_token(length: int = _LENGTH) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_token()}"


def new_intent_id() -> str:
    return new_id("pi")


def new_client_secret(intent_id: str) -> str:
    return f"{intent_id}{SECRET_MARK}{random_token()}"


def intent_id_of_client_secret(value: str) -> str | None:
    """The intent a client secret belongs to, or None when `value` is not one."""
    if not value.startswith("pi_") or SECRET_MARK not in value:
        return None
    intent_id, _, token = value.partition(SECRET_MARK)
    return intent_id if token else None


def is_client_secret(value: str) -> bool:
    return intent_id_of_client_secret(value) is not None
