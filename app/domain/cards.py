"""Card payments the Mexican way: installment plans (meses sin intereses), the
3-D Secure policy and when the money is captured (contract section 7)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta


class ThreeDSecure(enum.StrEnum):
    AUTOMATIC = "AUTOMATIC"  # the PSP decides (its risk rules, the issuer's mandate)
    REQUIRED = "REQUIRED"  # ask for the challenge on every payment


class CaptureMethod(enum.StrEnum):
    AUTOMATIC = "AUTOMATIC"  # authorize and capture at once
    MANUAL = "MANUAL"  # authorize now; capturePaymentIntent takes the money later


# Card networks hold an uncaptured authorization for 7 days (Visa, Mastercard and Amex
# customer-initiated payments); Stripe cancels an uncaptured PaymentIntent after 7 days.
AUTHORIZATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class InstallmentPlan:
    """Interest-free monthly payments: `count` months, for amounts from `min_amount`
    minor units up."""

    count: int
    min_amount: int

    def qualifies(self, amount: int) -> bool:
        return amount >= self.min_amount


# Contract section 7's defaults (MXN): 3 months from 300.00, 6 from 600.00, 9 from
# 900.00, 12 from 1,200.00.
DEFAULT_INSTALLMENT_PLANS = (
    InstallmentPlan(3, 300_00),
    InstallmentPlan(6, 600_00),
    InstallmentPlan(9, 900_00),
    InstallmentPlan(12, 1_200_00),
)
# The most months any Mexican card PSP offers (Conekta and Openpay: 18; a few banks 24).
MAX_INSTALLMENTS = 24
