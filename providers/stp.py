"""Stp adapter (being written)."""

from __future__ import annotations

import httpx

from app.domain.methods import PaymentMethodType
from providers.base import ProviderConfig


class StpProvider:
    name = "stp"
    methods: frozenset[PaymentMethodType] = frozenset()

    def __init__(
        self, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config

    async def aclose(self) -> None:
        return None
