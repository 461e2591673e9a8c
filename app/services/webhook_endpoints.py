"""Merchants register, list, delete and roll the secrets of their webhook endpoints
(contract sections 6 and 10).

Rolling a secret is Stripe's: the new secret is shown once, and the old one keeps
signing beside it for `expireOldInHours`, so every delivery meanwhile carries a
`v1=` for each and a receiver verifies whichever secret it holds."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, replace

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import webhooks as rows
from app.domain.errors import InvalidInput, NotFound
from app.domain.events import EVENT_TYPES
from app.domain.ids import new_id, random_token
from app.domain.keys import check_live_after_roll, overlap
from app.domain.records import Delivery, Endpoint, RetiringSecret
from app.services.auth import Principal, require_secret_key
from app.services.url_guard import check_url, resolve_public

MAX_ENDPOINTS = 16
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str  # shown once, on creation or roll


class WebhookEndpointService:
    def __init__(self, db: Database, clock: Clock, *, allow_private: bool) -> None:
        self.db = db
        self.clock = clock
        self.allow_private = allow_private

    async def create(
        self, principal: Principal | None, url: str, events: list[str] | None
    ) -> CreatedEndpoint:
        merchant_id = require_secret_key(principal).merchant_id
        url = check_url(url, allow_private=self.allow_private)
        if not self.allow_private:
            await resolve_public(url)
        wanted = _event_types(events)
        async with self.db.read() as conn:
            existing = await rows.endpoints_of(conn, [merchant_id])
        if len(existing) >= MAX_ENDPOINTS:
            raise InvalidInput(f"a merchant may have at most {MAX_ENDPOINTS} endpoints", ("input",))
        endpoint = Endpoint(
            id=new_id("we"),
            merchant_id=merchant_id,
            url=url,
            events=wanted,
            secret=f"whsec_{random_token(32)}",
            enabled=True,
            created_at=self.clock.now(),
        )
        async with self.db.transaction() as conn:
            await rows.insert_endpoint(conn, endpoint)
        return CreatedEndpoint(endpoint, endpoint.secret)

    async def delete(self, principal: Principal | None, endpoint_id: str) -> Endpoint:
        endpoint = await self._own(principal, endpoint_id)
        async with self.db.transaction() as conn:
            await rows.delete_endpoint(conn, endpoint.id, self.clock.now())
        return replace(endpoint, enabled=False)

    async def roll_secret(
        self, principal: Principal | None, endpoint_id: str, expire_old_in_hours: int | None
    ) -> CreatedEndpoint:
        """A new signing secret; the old ones sign too until the overlap ends."""
        keep_old = overlap(expire_old_in_hours)
        merchant_id = require_secret_key(principal).merchant_id
        secret = f"whsec_{random_token(32)}"
        now = self.clock.now()
        until = now + keep_old
        async with self.db.transaction() as conn:
            endpoint = await rows.endpoint(conn, endpoint_id, for_update=True)
            if endpoint is None or endpoint.merchant_id != merchant_id:
                raise NotFound(f"no webhook endpoint {endpoint_id}", ("id",))
            retiring = tuple(
                RetiringSecret(old.secret, min(old.expires_at, until))
                for old in (RetiringSecret(endpoint.secret, until), *endpoint.retiring)
                if now < min(old.expires_at, until)
            )
            check_live_after_roll(len(retiring), "secrets")
            await rows.set_secrets(conn, endpoint.id, secret, retiring)
        return CreatedEndpoint(replace(endpoint, secret=secret, retiring=retiring), secret)

    async def list(self, principal: Principal | None) -> list[Endpoint]:
        merchant_id = require_secret_key(principal).merchant_id
        async with self.db.read() as conn:
            return await rows.endpoints_of(conn, [merchant_id])

    async def deliveries(
        self, principal: Principal | None, endpoint_id: str, first: int
    ) -> builtins.list[Delivery]:
        endpoint = await self._own(principal, endpoint_id)
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", ("first",))
        async with self.db.read() as conn:
            return await rows.deliveries_of(conn, endpoint.id, first)

    async def _own(self, principal: Principal | None, endpoint_id: str) -> Endpoint:
        merchant_id = require_secret_key(principal).merchant_id
        async with self.db.read() as conn:
            endpoint = await rows.endpoint(conn, endpoint_id)
        if endpoint is None or endpoint.merchant_id != merchant_id:
            raise NotFound(f"no webhook endpoint {endpoint_id}", ("id",))
        return endpoint


def _event_types(events: list[str] | None) -> list[str]:
    if not events:
        return ["*"]
    unknown = sorted(set(events) - EVENT_TYPES - {"*"})
    if unknown:
        raise InvalidInput(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}",
            ("input", "events"),
        )
    return sorted(set(events))
