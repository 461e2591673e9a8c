"""Who is calling: secret key, publishable key, or one intent's client secret.

Keys are looked up by SHA-256 digest. Resolved keys are cached for a short while
so that a hot read path does not pay a query per request; a revoked key stops
working within `CACHE_SECONDS`. A rolled key stops at its `expires_at`, which the
cache knows; a roll in this process forgets the merchant's cached keys at once, so
"expire now" is now here and within `CACHE_SECONDS` on other processes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import intents as intent_rows
from app.db.repositories import merchants as merchant_rows
from app.domain.errors import Forbidden, Unauthenticated
from app.domain.ids import intent_id_of_client_secret
from app.domain.intents import PaymentIntent

CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 10_000
MAX_KEY_LENGTH = 200


class KeyKind(enum.StrEnum):
    SECRET = "secret"
    PUBLISHABLE = "publishable"
    CLIENT_SECRET = "client_secret"


@dataclass(frozen=True, slots=True)
class Principal:
    merchant_id: str
    kind: KeyKind
    intent_id: str | None = None  # set for a client secret: the one intent it opens

    @property
    def is_secret(self) -> bool:
        return self.kind is KeyKind.SECRET


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated('send your key as "Authorization: Bearer <key>"')
    return token.strip()


class Authenticator:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        # token -> (cached until, monotonic; the principal; the key's expiry, if rolled)
        self._cache: dict[str, tuple[float, Principal, datetime | None]] = {}

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal behind an Authorization header; None when there is none."""
        token = bearer_token(authorization)
        return None if token is None else await self.principal_for(token)

    async def principal_for(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if (
            cached
            and cached[0] > time.monotonic()
            and (cached[2] is None or self.clock.now() < cached[2])
        ):
            return cached[1]
        principal, expires_at = await self._lookup(token)
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[token] = (time.monotonic() + CACHE_SECONDS, principal, expires_at)
        return principal

    def forget(self, merchant_id: str) -> None:
        """Drop the merchant's cached keys: its keys just changed."""
        for token in [t for t, c in self._cache.items() if c[1].merchant_id == merchant_id]:
            self._cache.pop(token, None)

    async def _lookup(self, token: str) -> tuple[Principal, datetime | None]:
        if len(token) > MAX_KEY_LENGTH or not token.isascii() or not token.isprintable():
            raise Unauthenticated("invalid API key")
        intent_id = intent_id_of_client_secret(token)
        async with self.db.read() as conn:
            if intent_id is not None:
                intent = await intent_rows.get(conn, intent_id)
                if intent and hmac.compare_digest(intent.client_secret.encode(), token.encode()):
                    return Principal(intent.merchant_id, KeyKind.CLIENT_SECRET, intent.id), None
                raise Unauthenticated("invalid client secret")
            owner = await merchant_rows.owner_of_key(conn, hash_key(token))
        if owner is None or owner.revoked_at is not None:
            raise Unauthenticated("invalid API key")
        if not owner.works_at(self.clock.now()):
            raise Unauthenticated("this API key has expired: it was rolled; use its replacement")
        return Principal(owner.merchant_id, KeyKind(owner.kind)), owner.expires_at


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated('no API key: send "Authorization: Bearer <key>"')
    return principal


def require_secret_key(principal: Principal | None) -> Principal:
    principal = require_principal(principal)
    if not principal.is_secret:
        raise Forbidden("this needs your secret key (sk_...)")
    return principal


def owns(principal: Principal | None, intent: PaymentIntent) -> bool:
    """Whether this viewer sees the intent whole. Contract section 2: `metadata`,
    `events`, `clientSecret`, `refunds` and the PSP's references belong to the
    merchant's secret key; a client secret is held by the customer's checkout and
    reads only what a checkout shows (as Stripe's publishable key + client secret
    reads a limited PaymentIntent)."""
    return (
        principal is not None
        and principal.kind is KeyKind.SECRET
        and principal.merchant_id == intent.merchant_id
    )


def can_read(principal: Principal, intent: PaymentIntent) -> bool:
    """Secret key: its merchant's intents. Client secret: its one intent."""
    if principal.kind is KeyKind.SECRET:
        return intent.merchant_id == principal.merchant_id
    if principal.kind is KeyKind.CLIENT_SECRET:
        return intent.id == principal.intent_id
    return False
