"""Which card PSPs a confirmation may go to, and what a checkout is told about cards.

A card token belongs to the PSP that minted it, so a card goes only to PSPs the
checkout gave a token for (a lone `token` is the first card PSP's on the route), and,
with installments, only to those offering that plan for the amount (contract
section 7). Plans and tokenizers are configured per PSP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from app.config import Settings
from app.domain.cards import DEFAULT_INSTALLMENT_PLANS, InstallmentPlan
from app.domain.errors import InstallmentsUnavailable, InvalidInput
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money, parse_amount
from providers.base import PaymentRequest, Provider


@dataclass(frozen=True, slots=True)
class Tokenizer:
    """Where a checkout mints a PSP's card token, and with which key."""

    provider: str
    publishable_key: str
    tokenize_url: str


@dataclass(frozen=True, slots=True)
class PlanOffer:
    """One plan as `paymentMethods` lists it: the months, from what amount, where."""

    count: int
    min_amount: Money
    providers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CardCatalog:
    """Per card PSP: its installment plans and its tokenizer."""

    plans: Mapping[str, tuple[InstallmentPlan, ...]]
    tokenizers: Mapping[str, Tokenizer]

    def offers(self, amount: Money, providers: Sequence[str]) -> list[PlanOffer]:
        """The plans `amount` qualifies for at any of `providers`, fewest months first.
        Plans are in pesos: a payment in another currency has none."""
        if amount.currency.value != "MXN":
            return []
        by_count: dict[int, list[tuple[str, int]]] = {}
        for name in providers:
            for plan in self.plans.get(name, ()):
                if plan.qualifies(amount.minor):
                    by_count.setdefault(plan.count, []).append((name, plan.min_amount))
        return [
            PlanOffer(
                count,
                Money(min(low for _, low in where), amount.currency),
                tuple(name for name, _ in where),
            )
            for count, where in sorted(by_count.items())
        ]

    def route(
        self, request: PaymentRequest, configured: Sequence[str], candidates: Sequence[str]
    ) -> tuple[PaymentRequest, list[str]]:
        """`candidates` (the route's PSPs whose circuits accept calls) cut to those that
        can take this card, and the request with its token per PSP.

        InvalidInput for a token naming a PSP that does not take cards here;
        InstallmentsUnavailable when no PSP with a token offers the plan asked for."""
        tokens = dict(request.card_tokens)
        if not tokens and configured and request.card_token is not None:
            # A lone token is the first card PSP's on the route: no card failover.
            tokens = {configured[0]: request.card_token}
            request = replace(request, card_tokens=tuple(tokens.items()))
        for i, name in enumerate(tokens):
            if name not in configured:
                known = ", ".join(configured) or "none"
                raise InvalidInput(
                    f"{name!r} does not take cards here (card PSPs: {known})",
                    ("input", "card", "tokens", str(i), "provider"),
                )
        usable = [name for name in configured if name in tokens]
        if request.installments is not None:
            count = request.installments
            offering = {
                name
                for offer in self.offers(request.amount, usable)
                if offer.count == count
                for name in offer.providers
            }
            if not offering:
                raise InstallmentsUnavailable(
                    f"no {count}-month plan for {request.amount.to_decimal_string()} "
                    f"{request.amount.currency.value} at {', '.join(usable)}",
                    ("input", "card", "installments"),
                )
            usable = [name for name in usable if name in offering]
        return request, [name for name in candidates if name in usable]


def catalog_from(
    settings: Settings, providers: Mapping[str, Provider], sandbox_url: str | None
) -> CardCatalog:
    """Each card PSP's plans (configured, else contract section 7's) and tokenizer (the
    sandbox's outside production, else the configured URL or the adapter's own)."""
    route = settings.methods[PaymentMethodType.CARD].providers
    names = [n for n in route if n in providers and PaymentMethodType.CARD in providers[n].methods]
    plans: dict[str, tuple[InstallmentPlan, ...]] = {}
    tokenizers: dict[str, Tokenizer] = {}
    for name in names:
        own = settings.provider(name)
        configured = own.installment_plans
        plans[name] = (
            DEFAULT_INSTALLMENT_PLANS
            if configured is None
            else tuple(
                InstallmentPlan(count, parse_amount(low, Currency.MXN).minor)
                for count, low in sorted(configured.items())
            )
        )
        url = own.tokenize_url or (
            f"{sandbox_url}/sandbox/tokens"
            if sandbox_url
            else getattr(providers[name], "tokenize_url", "")
        )
        if url:
            tokenizers[name] = Tokenizer(name, own.publishable_key, url)
    return CardCatalog(plans, tokenizers)
