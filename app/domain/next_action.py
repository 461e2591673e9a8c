"""What the customer must do next: the contract's `NextAction` union, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OxxoVoucher:
    reference: str
    expires_at: datetime
    hosted_voucher_url: str | None = None


@dataclass(frozen=True, slots=True)
class SpeiInstructions:
    clabe: str
    bank: str
    beneficiary: str
    reference: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CryptoInstructions:
    asset: str
    network: str
    address: str
    crypto_amount: str  # exact decimal string in the asset's own units
    rate: str  # exact decimal string: MXN per unit of the asset
    quote_expires_at: datetime


@dataclass(frozen=True, slots=True)
class RedirectToUrl:
    url: str
    return_url: str | None = None


NextAction = OxxoVoucher | SpeiInstructions | CryptoInstructions | RedirectToUrl
