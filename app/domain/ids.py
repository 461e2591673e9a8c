"""Public identifiers: `pi_…` intents, `pi_…_secret_…` client secrets, and friends.

Random, alphanumeric, and long enough (about 141 bits) that guessing one is hopeless.
"""

from __future__ import annotations

import re
import secrets

_LENGTH = 24
SECRET_MARK = "_secret_"


# token_urlsafe is fast; its two symbols are mapped to letters, keeping ids
# alphanumeric at about 5.9 bits a character (about 141 bits for 24).
_TO_ALNUM = str.maketrans({"-": "x", "_": "z"})


def random_token(length: int = _LENGTH) -> str:
    return secrets.token_urlsafe(length)[:length].translate(_TO_ALNUM)


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
    if not token or not token.isalnum() or not looks_like_id(intent_id, "pi"):
        return None
    return intent_id


def is_client_secret(value: str) -> bool:
    return intent_id_of_client_secret(value) is not None


# What our ids look like; anything else is not one of ours (and is never sent to
# the database: PostgreSQL rejects NUL bytes, for one).
_OUR_ID = re.compile(r"[a-z]{2,5}_[A-Za-z0-9]{1,64}")


def looks_like_id(value: str, prefix: str) -> bool:
    return value.startswith(f"{prefix}_") and _OUR_ID.fullmatch(value) is not None
