"""PSP name -> adapter class. Adding a PSP: its file in providers/, one line here."""

from __future__ import annotations

from typing import Any

import httpx

from providers.base import Provider, ProviderConfig
from providers.bitso import BitsoProvider
from providers.conekta import ConektaProvider
from providers.stp import StpProvider
from providers.stripe import StripeProvider

ADAPTERS: dict[str, type[Any]] = {
    "stripe": StripeProvider,
    "conekta": ConektaProvider,
    "stp": StpProvider,
    "bitso": BitsoProvider,
}


def build_provider(
    name: str, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    try:
        adapter = ADAPTERS[name]
    except KeyError:
        raise ValueError(f"no adapter for provider {name!r}; known: {sorted(ADAPTERS)}") from None
    provider: Provider = adapter(config, transport=transport)
    return provider
