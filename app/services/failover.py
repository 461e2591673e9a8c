"""What to tell the client when no PSP would take a payment or a refund."""

from __future__ import annotations

from app.domain.errors import (
    CardTokenInvalid,
    CobroError,
    InstallmentsUnavailable,
    InvalidInput,
    ProviderUnavailable,
)
from providers.base import (
    CARD_TOKEN_INVALID,
    INSTALLMENTS_UNAVAILABLE,
    INVALID_REQUEST,
    ProviderError,
)

# Refusals the contract has a code of its own for.
_NAMED_REFUSALS: dict[str, type[CobroError]] = {
    CARD_TOKEN_INVALID: CardTokenInvalid,
    INSTALLMENTS_UNAVAILABLE: InstallmentsUnavailable,
}


def no_provider_error(
    failures: list[ProviderError], what: str, field: tuple[str, ...]
) -> CobroError:
    """InvalidInput when every PSP refused the request on its merits (an unknown card
    token is the client's mistake, not an outage); ProviderUnavailable otherwise."""
    refusals = {INVALID_REQUEST, *_NAMED_REFUSALS}
    named = [f for f in failures if f.code in _NAMED_REFUSALS]
    if named and all(f.code in refusals for f in failures):
        # Every PSP refused the card on its merits, one at least for a reason the
        # contract names (a token it does not know, a plan it does not offer the card).
        tried = "; ".join(f"{f.provider}: {f.message}" for f in failures)
        return _NAMED_REFUSALS[named[0].code](tried, field)
    if failures and all(f.code == INVALID_REQUEST for f in failures):
        return InvalidInput(f"the {what} was refused: {failures[0].message}", field)
    tried = "; ".join(f"{f.provider}: {f.message}" for f in failures)
    return ProviderUnavailable(
        f"no provider could take this {what} ({tried or 'every circuit is open'}); "
        "nothing changed, retry later"
    )
