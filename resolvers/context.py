"""The per-request context: who is calling, the services, the DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from app.domain.errors import CobroError
from app.domain.records import AuditRecord
from app.domain.refunds import Refund
from app.services.auth import Principal
from app.services.container import Services


class Loaders:
    """Batch loads for one request, so a page of intents with events is two queries."""

    def __init__(self, services: Services) -> None:
        async def load_events(intent_ids: list[str]) -> list[list[AuditRecord]]:
            found = await services.intents.events(intent_ids)
            return [found.get(i, []) for i in intent_ids]

        # No cache: a WebSocket context lives for many messages, and each must see
        # the trail as it is then. Batching still turns a page into one query.
        self.events: DataLoader[str, list[AuditRecord]] = DataLoader(
            load_fn=load_events, cache=False
        )

        async def load_payout_events(payout_ids: list[str]) -> list[list[AuditRecord]]:
            found = await services.payouts.events(payout_ids)
            return [found.get(i, []) for i in payout_ids]

        self.payout_events: DataLoader[str, list[AuditRecord]] = DataLoader(
            load_fn=load_payout_events, cache=False
        )

        async def load_refunds(intent_ids: list[str]) -> list[list[Refund]]:
            found = await services.refunds.of_intents(intent_ids)
            return [found.get(i, []) for i in intent_ids]

        self.refunds: DataLoader[str, list[Refund]] = DataLoader(load_fn=load_refunds, cache=False)


@dataclass(slots=True)
class Context:
    services: Services
    principal: Principal | None
    # A key that was sent but is no good, or one over its rate limit; raised when
    # something needs the principal (a mutation shows it as a UserError).
    auth_error: CobroError | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    _loaders: Loaders | None = field(default=None, init=False, repr=False)

    @property
    def loaders(self) -> Loaders:
        # Made on first use: most requests, and every idle subscription, need none.
        if self._loaders is None:
            self._loaders = Loaders(self.services)
        return self._loaders

    def caller(self) -> Principal | None:
        """The authenticated caller (None if no key was sent); raise if the key was bad."""
        if self.auth_error is not None:
            raise self.auth_error
        return self.principal
