"""A merchant's API keys: listed without the keys, and rolled (contract section 10).

`rollApiKey` makes a new key of a kind and gives every working key of that kind an
expiry `expireOldInHours` ahead (or keeps a sooner one), so both work meanwhile.
Keys are stored as digests; the new key is shown once, in the roll's answer. Rolls
of one merchant run one after another (its row is locked), so none is lost.
"""

from __future__ import annotations

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import merchants as rows
from app.domain.errors import InvalidInput
from app.domain.ids import new_id
from app.domain.keys import ApiKey, ApiKeyKind, check_live_after_roll, is_live_key, new_key, overlap
from app.services.auth import Authenticator, Principal, hash_key, require_secret_key
from app.services.merchants import KEY_PREFIX_SHOWN


class ApiKeyService:
    def __init__(self, db: Database, clock: Clock, auth: Authenticator) -> None:
        self.db = db
        self.clock = clock
        self.auth = auth

    async def list(self, principal: Principal | None) -> list[ApiKey]:
        """The keys that work now, secret first, oldest first; a rolled one shows its
        expiry."""
        merchant_id = require_secret_key(principal).merchant_id
        async with self.db.read() as conn:
            stored = await rows.live_keys(conn, merchant_id, self.clock.now())
        return [ApiKey(ApiKeyKind(k.kind), k.last4, k.created_at, k.expires_at) for k in stored]

    async def roll(
        self, principal: Principal | None, kind: ApiKeyKind, expire_old_in_hours: int | None
    ) -> ApiKey:
        merchant_id = require_secret_key(principal).merchant_id
        if not isinstance(kind, ApiKeyKind):
            raise InvalidInput("kind must be SECRET or PUBLISHABLE", ("kind",))
        keep_old = overlap(expire_old_in_hours)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await rows.lock_merchant(conn, merchant_id)
            old = await rows.live_keys(conn, merchant_id, now, kind.value)
            if keep_old:
                check_live_after_roll(len(old), f"{kind.value} keys")
            live = any(is_live_key(p) for p in await rows.key_prefixes(conn, merchant_id))
            key = new_key(kind, live=live)
            await rows.insert_key(
                conn,
                key_id=new_id("key"),
                merchant_id=merchant_id,
                kind=kind.value,
                key_hash=hash_key(key),
                key_prefix=key[:KEY_PREFIX_SHOWN],
                last4=key[-4:],
                now=now,
            )
            await rows.expire_keys(conn, [k.id for k in old], now + keep_old)
        # This process stops honouring an expired key at once; others within
        # app.services.auth.CACHE_SECONDS.
        self.auth.forget(merchant_id)
        return ApiKey(kind, key[-4:], now, None, key)
