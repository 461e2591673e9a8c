"""Payment methods and how their money settles."""

from __future__ import annotations

import enum


class PaymentMethodType(enum.StrEnum):
    CARD = "CARD"
    OXXO = "OXXO"
    SPEI = "SPEI"
    CRYPTO = "CRYPTO"


class Settlement(enum.StrEnum):
    INSTANT = "INSTANT"
    DELAYED = "DELAYED"


DISPLAY_NAMES = {
    PaymentMethodType.CARD: "Credit or debit card",
    PaymentMethodType.OXXO: "Cash at OXXO",
    PaymentMethodType.SPEI: "SPEI bank transfer",
    PaymentMethodType.CRYPTO: "Crypto (stablecoin)",
}

SETTLEMENT = {
    PaymentMethodType.CARD: Settlement.INSTANT,
    PaymentMethodType.OXXO: Settlement.DELAYED,
    PaymentMethodType.SPEI: Settlement.DELAYED,
    PaymentMethodType.CRYPTO: Settlement.DELAYED,
}

# Currencies each method can take: OXXO, SPEI and the crypto on-ramp settle in pesos.
CURRENCIES = {
    PaymentMethodType.CARD: frozenset({"MXN", "USD"}),
    PaymentMethodType.OXXO: frozenset({"MXN"}),
    PaymentMethodType.SPEI: frozenset({"MXN"}),
    PaymentMethodType.CRYPTO: frozenset({"MXN"}),
}
