"""What to tell the client when no PSP would take a payment or a refund."""

from __future__ import annotations

from app.domain.errors import CobroError, InvalidInput, ProviderUnavailable
from providers.base import INVALID_REQUEST, ProviderError


def no_provider_error(
    failures: list[ProviderError], what: str, field: tuple[str, ...]
) -> CobroError:
    """InvalidInput when every PSP refused the request on its merits (an unknown card
    token is the client's mistake, not an outage); ProviderUnavailable otherwise."""
    if failures and all(f.code == INVALID_REQUEST for f in failures):
        return InvalidInput(f"the {what} was refused: {failures[0].message}", field)
    tried = "; ".join(f"{f.provider}: {f.message}" for f in failures)
    return ProviderUnavailable(
        f"no provider could take this {what} ({tried or 'every circuit is open'}); "
        "nothing changed, retry later"
    )
