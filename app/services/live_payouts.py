"""Live updates of one payout: the snapshot, then every change, in version order.

The same guarantees as services/live.py gives an intent, by the same means: subscribe
first, read the snapshot second, drop versions already sent, fill gaps (and catch up
after a broker outage) from the outbox, which keeps every version. Changes come from
every process through the broker's `payout:{id}` channel. The stream completes after a
final status (RETURNED, FAILED, CANCELED); PAID is not final, since a transfer can still
come back, so a subscriber that only waits for the money may stop at PAID itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from app.db.engine import Database
from app.db.repositories import outbox
from app.db.repositories import payouts as payout_rows
from app.domain.errors import InvalidInput, NotFound
from app.domain.payout_codec import payout_from_dict
from app.domain.payouts import Payout, is_final_payout
from app.events.broker import Broker, Subscription
from app.events.messages import PayoutChange, payout_channel
from app.services.auth import Principal, require_secret_key

T = TypeVar("T")


class PayoutLive:
    def __init__(self, db: Database, broker: Broker) -> None:
        self.db = db
        self.broker = broker

    async def payout_updates(
        self,
        principal: Principal | None,
        payout_id: str,
        after_version: int | None,
        present: Callable[[Payout], T],
    ) -> AsyncGenerator[T, None]:
        viewer = require_secret_key(principal)
        subscription = await self.broker.subscribe([payout_channel(payout_id)])
        try:
            current = await self._current(payout_id)
            if current is None or current.merchant_id != viewer.merchant_id:
                raise NotFound(f"no payout {payout_id}", ("id",))
            if after_version is not None and after_version > current.version:
                raise InvalidInput(
                    f"afterVersion {after_version} is ahead of the payout (version "
                    f"{current.version})",
                    ("afterVersion",),
                )
            last = 0 if after_version is None else after_version
            latest, final = current.version, is_final_payout(current.status)
            backlog = (
                [current]
                if after_version is None
                else await self._versions(payout_id, last, current.version) or [current]
            )
            del current
            for payout in backlog:
                if payout.version > last:
                    last = payout.version
                    yield present(payout)
            while not final or latest > last:
                for payout in await self._news(subscription, payout_id, last):
                    if payout.version > last:
                        last = latest = payout.version
                        final = is_final_payout(payout.status)
                        yield present(payout)
        finally:
            subscription.close()

    async def _news(self, subscription: Subscription, payout_id: str, last: int) -> list[Payout]:
        while True:
            change = await subscription.next()
            if change is None:
                return await self._versions(payout_id, last, None)
            if isinstance(change, PayoutChange) and change.version > last:
                news = await self._versions(payout_id, last, change.version - 1)
                news.append(change.payout)
                return news

    async def _current(self, payout_id: str) -> Payout | None:
        async with self.db.read() as conn:
            return await payout_rows.get(conn, payout_id)

    async def _versions(self, payout_id: str, after: int, up_to: int | None) -> list[Payout]:
        """As LiveService._versions: none asked for, none read."""
        if up_to is not None and up_to <= after:
            return []
        async with self.db.read() as conn:
            rows = await outbox.versions_between(conn, payout_id, after, up_to)
        return [payout_from_dict(row.payload) for row in rows]
