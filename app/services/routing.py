"""Which PSPs serve a method, in what order, for what amounts, and whether they are up.

Routes come from configuration (contract section 4 by default). A provider whose
circuit is open is skipped; a method whose every provider is skipped is not
available.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from app.config import MethodRoute
from app.domain.errors import AmountOutOfRange, MethodUnavailable, UnsupportedCurrency
from app.domain.methods import CURRENCIES, DISPLAY_NAMES, SETTLEMENT, PaymentMethodType, Settlement
from app.domain.money import Currency, Money
from app.metrics import PROVIDER_CALL_SECONDS, PROVIDER_CALLS
from app.resilience.breaker import Breakers, CircuitOpen, CircuitState
from app.services.cards import CardCatalog, PlanOffer, Tokenizer
from providers.base import PaymentRequest, Provider, ProviderError

T = TypeVar("T")
CARD = PaymentMethodType.CARD


@dataclass(frozen=True, slots=True)
class MethodOption:
    type: PaymentMethodType
    display_name: str
    min_amount: Money
    max_amount: Money
    settlement: Settlement
    available: bool
    # CARD only: the installment plans this amount qualifies for, and each card PSP's
    # tokenizer (contract section 7).
    installment_plans: tuple[PlanOffer, ...] = ()
    tokenizers: tuple[Tokenizer, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderState:
    name: str
    methods: tuple[PaymentMethodType, ...]
    circuit: CircuitState


class Router:
    def __init__(
        self,
        routes: Mapping[PaymentMethodType, MethodRoute],
        providers: Mapping[str, Provider],
        breakers: Breakers,
        cards: CardCatalog | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.cards = cards or CardCatalog({}, {})
        self.breakers = breakers
        # Only providers that exist and say they serve the method take part.
        self.routes = {
            method: [
                name
                for name in route.providers
                if name in self.providers and method in self.providers[name].methods
            ]
            for method, route in routes.items()
        }
        # Parsed once per method and currency: the configured bounds never change, and
        # parsing them on every check was 1% of a payment's CPU.
        self._ranges = {
            (method, currency): route.amount_range(currency)
            for method, route in routes.items()
            for currency in Currency
        }

    def amount_range(self, method: PaymentMethodType, currency: Currency) -> tuple[Money, Money]:
        return self._ranges[method, currency]

    def check_amount(self, method: PaymentMethodType, amount: Money) -> None:
        if amount.currency.value not in CURRENCIES[method]:
            raise UnsupportedCurrency(
                f"{method.value} payments are in {', '.join(sorted(CURRENCIES[method]))} only, "
                f"not {amount.currency.value}"
            )
        low, high = self.amount_range(method, amount.currency)
        if not low.minor <= amount.minor <= high.minor:
            raise AmountOutOfRange(
                f"{method.value} takes {low.to_decimal_string()} to {high.to_decimal_string()} "
                f"{amount.currency.value}; {amount.to_decimal_string()} is outside that"
            )

    def candidates(self, method: PaymentMethodType) -> list[str]:
        """Providers to try for `method`, best first, skipping open circuits."""
        configured = self.routes.get(method) or []
        if not configured:
            raise MethodUnavailable(f"no provider is configured for {method.value}")
        return [name for name in configured if self.breakers.accepts_calls(name)]

    def is_available(self, method: PaymentMethodType, amount: Money) -> bool:
        if amount.currency.value not in CURRENCIES[method]:
            return False
        low, high = self.amount_range(method, amount.currency)
        if not low.minor <= amount.minor <= high.minor:
            return False
        configured = self.routes.get(method) or []
        return any(self.breakers.accepts_calls(name) for name in configured)

    def options(self, amount: Money) -> list[MethodOption]:
        return [
            self._option(method, amount) for method in PaymentMethodType if method in self.routes
        ]

    def _option(self, method: PaymentMethodType, amount: Money) -> MethodOption:
        available = self.is_available(method, amount)
        low, high = self.amount_range(method, amount.currency)
        return MethodOption(
            type=method,
            display_name=DISPLAY_NAMES[method],
            min_amount=low,
            max_amount=high,
            settlement=SETTLEMENT[method],
            available=available,
            **(self._card_options(amount) if method is CARD and available else {}),
        )

    def _card_options(self, amount: Money) -> dict[str, Any]:
        route = self.routes.get(CARD) or []
        return {
            "installment_plans": tuple(self.cards.offers(amount, route)),
            "tokenizers": tuple(
                self.cards.tokenizers[n] for n in route if n in self.cards.tokenizers
            ),
        }

    def route_card(
        self, request: PaymentRequest, candidates: list[str]
    ) -> tuple[PaymentRequest, list[str]]:
        """The card PSPs this request may go to, of `candidates`, and its tokens."""
        return self.cards.route(request, self.routes.get(CARD) or [], candidates)

    def provider_states(self) -> list[ProviderState]:
        return [
            ProviderState(
                name=name,
                methods=tuple(m for m in PaymentMethodType if m in provider.methods),
                circuit=self.breakers.state(name),
            )
            for name, provider in self.providers.items()
        ]

    async def call(self, name: str, fn: Callable[[Provider], Awaitable[T]]) -> T:
        """Call provider `name` through its circuit breaker."""
        provider = self.providers[name]
        started = time.perf_counter()
        try:
            result = await self.breakers.call(name, lambda: fn(provider))
        except CircuitOpen:
            PROVIDER_CALLS.labels(name, "circuit_open").inc()
            PROVIDER_CALL_SECONDS.labels(name, "circuit_open").observe(
                time.perf_counter() - started
            )
            raise
        except ProviderError as exc:
            PROVIDER_CALLS.labels(name, "error").inc()
            PROVIDER_CALL_SECONDS.labels(name, _outcome(exc)).observe(time.perf_counter() - started)
            raise
        PROVIDER_CALLS.labels(name, "ok").inc()
        PROVIDER_CALL_SECONDS.labels(name, "ok").observe(time.perf_counter() - started)
        return result


def _outcome(exc: ProviderError) -> str:
    """A failed call's outcome label: refused (final), unavailable (not carried out)
    or unknown (may have happened)."""
    if exc.outcome_unknown:
        return "unknown"
    return "unavailable" if exc.retryable else "refused"
