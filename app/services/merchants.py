"""Merchants and their keys: created by `cobro merchants create` and the dev seed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import merchants as rows
from app.domain.errors import Forbidden
from app.domain.ids import new_id
from app.domain.keys import ApiKeyKind, new_key
from app.services.auth import KeyKind, Principal, hash_key, require_principal

log = logging.getLogger("cobro.merchants")

KEY_PREFIX_SHOWN = 12  # how much of a key logs and dashboards may show


@dataclass(frozen=True, slots=True)
class NewMerchant:
    merchant_id: str
    secret_key: str
    publishable_key: str

    def as_dict(self) -> dict[str, str]:
        return {
            "merchant_id": self.merchant_id,
            "secret_key": self.secret_key,
            "publishable_key": self.publishable_key,
        }


class MerchantService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(
        self,
        name: str,
        *,
        live: bool,
        secret_key: str | None = None,
        publishable_key: str | None = None,
    ) -> NewMerchant:
        merchant = NewMerchant(
            merchant_id=new_id("acct"),
            secret_key=secret_key or new_key(ApiKeyKind.SECRET, live=live),
            publishable_key=publishable_key or new_key(ApiKeyKind.PUBLISHABLE, live=live),
        )
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await rows.insert_merchant(conn, merchant.merchant_id, name, now)
            for kind, key in (
                (KeyKind.SECRET, merchant.secret_key),
                (KeyKind.PUBLISHABLE, merchant.publishable_key),
            ):
                await rows.insert_key(
                    conn,
                    key_id=new_id("key"),
                    merchant_id=merchant.merchant_id,
                    kind=kind.value,
                    key_hash=hash_key(key),
                    key_prefix=key[:KEY_PREFIX_SHOWN],
                    last4=key[-4:],
                    now=now,
                )
        return merchant

    async def name_for_customer(self, principal: Principal | None) -> str:
        """The merchant's name, for the customer holding one of its intents' client
        secrets: all of the merchant a hosted page ever shows."""
        principal = require_principal(principal)
        if principal.kind is not KeyKind.CLIENT_SECRET:
            raise Forbidden("a hosted page opens with its intent's client secret")
        async with self.db.read() as conn:
            name = await rows.merchant_name(conn, principal.merchant_id)
        return name or ""

    async def ensure_dev_merchant(self, secret_key: str, publishable_key: str) -> str:
        """The dev merchant's id, creating it with these keys on first start."""
        async with self.db.read() as conn:
            owner = await rows.owner_of_key(conn, hash_key(secret_key))
        if owner is not None:
            if not owner.works_at(self.clock.now()):
                log.warning(
                    "the dev merchant's secret key was rolled and has expired; "
                    "use the key rollApiKey answered with"
                )
            return owner.merchant_id
        try:
            merchant = await self.create(
                "Dev merchant", live=False, secret_key=secret_key, publishable_key=publishable_key
            )
        except IntegrityError:
            # Processes starting together on a fresh database (a cluster's first start)
            # race to seed it: the key's uniqueness lets one win; the rest use its merchant
            # (read in a write transaction, which SQLite's group commit shares with the
            # winner, so its row is seen before it is committed).
            async with self.db.transaction() as conn:
                owner = await rows.owner_of_key(conn, hash_key(secret_key))
            if owner is None:
                raise
            return owner.merchant_id
        return merchant.merchant_id
