"""The `NextAction` union: what the customer does next."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import hosted_pages
from app.domain import next_action as domain
from app.domain.intents import PaymentIntent
from app.services.barcodes import code128_svg
from app.services.qr_codes import qr_svg
from resolvers.scalars import DecimalString

if TYPE_CHECKING:
    from resolvers.context import Context


@strawberry.type
class OxxoVoucher:
    reference: str
    expires_at: datetime
    # The intent it belongs to, for the address of Cobro's page (never shown as such).
    intent: strawberry.Private[PaymentIntent]

    @strawberry.field(
        description="Cobro's own printable voucher page, following the intent live "
        "(never the PSP's): the client secret rides in its fragment."
    )
    def hosted_voucher_url(self, info: strawberry.Info[Context, None]) -> str:
        return hosted_pages.voucher_url(
            info.context.services.public_url, self.intent.id, self.intent.client_secret
        )

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
    intent: strawberry.Private[PaymentIntent]

    @strawberry.field(description="Cobro's own printable instructions page, following the intent.")
    def hosted_instructions_url(self, info: strawberry.Info[Context, None]) -> str:
        return hosted_pages.instructions_url(
            info.context.services.public_url, self.intent.id, self.intent.client_secret
        )


@strawberry.type
class CryptoInstructions:
    asset: str
    network: str
    address: str
    crypto_amount: DecimalString
    rate: DecimalString
    quote_expires_at: datetime
    intent: strawberry.Private[PaymentIntent]

    @strawberry.field(description="Cobro's own printable instructions page, following the intent.")
    def hosted_instructions_url(self, info: strawberry.Info[Context, None]) -> str:
        return hosted_pages.instructions_url(
            info.context.services.public_url, self.intent.id, self.intent.client_secret
        )

    @strawberry.field(description="The deposit address as a QR code (SVG), for a wallet's camera.")
    def qr_svg(self) -> str:
        return qr_svg(self.address)


@strawberry.type
class RedirectToUrl:
    url: str
    return_url: str | None


NextAction = Annotated[
    OxxoVoucher | SpeiInstructions | CryptoInstructions | RedirectToUrl,
    strawberry.union("NextAction"),
]


def next_action_from_domain(intent: PaymentIntent) -> NextAction | None:
    action = intent.next_action
    if action is None:
        return None
    if isinstance(action, domain.OxxoVoucher):
        return OxxoVoucher(
            reference=action.reference,
            expires_at=action.expires_at,
            intent=intent,
        )
    if isinstance(action, domain.SpeiInstructions):
        return SpeiInstructions(
            clabe=action.clabe,
            bank=action.bank,
            beneficiary=action.beneficiary,
            reference=action.reference,
            expires_at=action.expires_at,
            intent=intent,
        )
    if isinstance(action, domain.CryptoInstructions):
        return CryptoInstructions(
            asset=action.asset,
            network=action.network,
            address=action.address,
            crypto_amount=DecimalString(action.crypto_amount),
            rate=DecimalString(action.rate),
            quote_expires_at=action.quote_expires_at,
            intent=intent,
        )
    return RedirectToUrl(url=action.url, return_url=action.return_url)
