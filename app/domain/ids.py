"""Public identifiers: `pi_…` intents, `pi_…_secret_…` client secrets, and friends.

Random, alphanumeric, and long enough (about 141 bits) that guessing one is hopeless.
"""

from __future__ import annotations

import os
import re
import threading
from base64 import urlsafe_b64encode

_LENGTH = 24
SECRET_MARK = "_secret_"


# URL-safe base64 of random bytes, its two symbols mapped to letters: alphanumeric at
# about 5.9 bits a character (about 141 bits for 24).
_TO_ALNUM = str.maketrans({"-": "x", "_": "z"})


class _Entropy:
    """The OS's CSPRNG (os.urandom), drawn a block at a time: one getrandom call for
    a few hundred ids instead of one each (the call was 2% of a payment's CPU). No
    two callers ever get the same bytes: taking is under a lock, and a child process
    drops what it inherited at fork."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._used = 0

    def take(self, size: int) -> bytes:
        with self._lock:
            if self._used + size > len(self._block):
                self._block = os.urandom(max(self.BLOCK, size))
                self._used = 0
            start = self._used
            self._used += size
            return self._block[start : self._used]

    def drop(self) -> None:
        self._block = b""
        self._used = 0
        self._lock = threading.Lock()


_entropy = _Entropy()
os.register_at_fork(after_in_child=_entropy.drop)


def random_token(length: int = _LENGTH) -> str:
    size = -(-length * 3 // 4)  # bytes that give `length` base64 characters
    return urlsafe_b64encode(_entropy.take(size)).decode()[:length].translate(_TO_ALNUM)


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
