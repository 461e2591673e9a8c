"""The `NextAction` union: what the customer does next."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain import next_action as domain
from app.services.barcodes import code128_svg
from resolvers.scalars import DecimalString


@strawberry.type
class OxxoVoucher:
    reference: str
    hosted_voucher_url: str | None
    expires_at: datetime

    @strawberry.field(description="The reference as a Code 128 barcode, for the store's scanner.")
    def barcode_svg(self) -> str | None:
        return code128_svg(self.reference)


@strawberry.type
class SpeiInstructions:
    clabe: str
    bank: str
    beneficiary: str
    reference: str
    expires_at: datetime | None


@strawberry.type
class CryptoInstructions:
    asset: str
    network: str
    address: str
    crypto_amount: DecimalString
    rate: DecimalString
    quote_expires_at: datetime


@strawberry.type
class RedirectToUrl:
    url: str
    return_url: str | None


NextAction = Annotated[
    OxxoVoucher | SpeiInstructions | CryptoInstructions | RedirectToUrl,
    strawberry.union("NextAction"),
]


def next_action_from_domain(action: domain.NextAction | None) -> NextAction | None:
    if action is None:
        return None
    if isinstance(action, domain.OxxoVoucher):
        return OxxoVoucher(
            reference=action.reference,
            hosted_voucher_url=action.hosted_voucher_url,
            expires_at=action.expires_at,
        )
    if isinstance(action, domain.SpeiInstructions):
        return SpeiInstructions(
            clabe=action.clabe,
            bank=action.bank,
            beneficiary=action.beneficiary,
            reference=action.reference,
            expires_at=action.expires_at,
        )
    if isinstance(action, domain.CryptoInstructions):
        return CryptoInstructions(
            asset=action.asset,
            network=action.network,
            address=action.address,
            crypto_amount=DecimalString(action.crypto_amount),
            rate=DecimalString(action.rate),
            quote_expires_at=action.quote_expires_at,
        )
    return RedirectToUrl(url=action.url, return_url=action.return_url)
