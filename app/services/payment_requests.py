"""From what a checkout sent to what a PSP is asked: validation and the request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from app.domain.cards import MAX_INSTALLMENTS, ThreeDSecure
from app.domain.clabe import validate_clabe
from app.domain.errors import InstallmentsUnavailable, InvalidInput, MethodNotAllowed
from app.domain.expiry import oxxo_expires_at, oxxo_expiry_days
from app.domain.intents import PaymentIntent
from app.domain.methods import PaymentMethodType
from app.domain.text import check_text
from providers.base import PaymentRequest

# Crypto assets and the networks we accept deposits on.
CRYPTO_NETWORKS = {
    "USDC": frozenset({"polygon", "ethereum", "solana"}),
    "USDT": frozenset({"polygon", "ethereum", "tron"}),
    "BTC": frozenset({"bitcoin"}),
}
MAX_TOKEN = 200
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class CardOptions:
    """A card as the checkout sends it: `token` (for the first card PSP on the route)
    or one token per PSP in `tokens`, exactly one of the two (contract section 7)."""

    token: str | None = None
    tokens: tuple[tuple[str, str], ...] | None = None  # (provider, token)
    installments: int | None = None
    three_d_secure: ThreeDSecure = ThreeDSecure.AUTOMATIC


@dataclass(frozen=True, slots=True)
class OxxoOptions:
    customer_name: str | None = None
    email: str | None = None
    expires_in_days: int | None = None


@dataclass(frozen=True, slots=True)
class SpeiOptions:
    payer_clabe: str | None = None


@dataclass(frozen=True, slots=True)
class CryptoOptions:
    asset: str = "USDC"
    network: str = "polygon"


@dataclass(frozen=True, slots=True)
class ConfirmIntent:
    intent_id: str
    method: PaymentMethodType
    card: CardOptions | None = None
    oxxo: OxxoOptions | None = None
    spei: SpeiOptions | None = None
    crypto: CryptoOptions | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> dict[str, object]:
        """What the client asked for, to compare idempotent retries with."""
        fields = asdict(self)
        del fields["idempotency_key"]
        return fields


def build_request(
    intent: PaymentIntent,
    command: ConfirmIntent,
    now: datetime,
    spei_expiry: timedelta,
    public_url: str = "",
) -> PaymentRequest:
    """The PSP request for this confirmation; refuses inputs meant for another method.

    Everything the PSP will be sent is decided here, once (the 3-D Secure return URL
    included): the attempt stores it, and a replay never rebuilds it."""
    method = command.method
    given = {
        PaymentMethodType.CARD: command.card is not None,
        PaymentMethodType.OXXO: command.oxxo is not None,
        PaymentMethodType.SPEI: command.spei is not None,
        PaymentMethodType.CRYPTO: command.crypto is not None,
    }
    if intent.capture_later and method is not PaymentMethodType.CARD:
        raise MethodNotAllowed(
            f"this intent is captured later, which only cards can do, not {method.value}",
            ("input", "method"),
        )
    if (
        command.card is not None
        and command.card.installments
        and method is not PaymentMethodType.CARD
    ):
        raise InstallmentsUnavailable(
            f"installments are for cards, not {method.value}", ("input", "card", "installments")
        )
    for other, present in given.items():
        if present and other is not method:
            name = other.value.lower()
            raise InvalidInput(f"{name} input given for method {method.value}", ("input", name))
    base = PaymentRequest(
        intent_id=intent.id, amount=intent.amount, method=method, description=intent.description
    )
    if method is PaymentMethodType.CARD:
        return _card_request(base, command.card, intent, public_url)
    if method is PaymentMethodType.OXXO:
        oxxo = command.oxxo or OxxoOptions()
        days = oxxo_expiry_days(oxxo.expires_in_days)
        return replace(
            base,
            customer_name=check_text(
                oxxo.customer_name, ("input", "oxxo", "customerName"), MAX_NAME
            ),
            customer_email=_email(oxxo.email),
            expires_in_days=days,
            expires_at=oxxo_expires_at(now, days),
        )
    if method is PaymentMethodType.SPEI:
        payer = (command.spei or SpeiOptions()).payer_clabe
        if payer is not None:
            payer = validate_clabe(payer, ("input", "spei", "payerClabe"))
        return replace(base, payer_clabe=payer, expires_at=now + spei_expiry)
    crypto = command.crypto or CryptoOptions()
    asset = crypto.asset.upper()
    if asset not in CRYPTO_NETWORKS or crypto.network not in CRYPTO_NETWORKS[asset]:
        accepted = "; ".join(f"{a} on {', '.join(sorted(n))}" for a, n in CRYPTO_NETWORKS.items())
        raise InvalidInput(
            f"{crypto.asset} on {crypto.network} is not accepted ({accepted})",
            ("input", "crypto"),
        )
    return replace(base, crypto_asset=asset, crypto_network=crypto.network)


def _card_request(
    base: PaymentRequest, card: CardOptions | None, intent: PaymentIntent, public_url: str
) -> PaymentRequest:
    """Tokens checked for shape (which PSPs they name is the router's to judge)."""
    if card is None or (card.token is None) == (card.tokens is None):
        raise InvalidInput(
            "a card needs exactly one of card.token or card.tokens", ("input", "card")
        )
    tokens: tuple[tuple[str, str], ...] = ()
    if card.tokens is not None:
        if not card.tokens:
            raise InvalidInput("card.tokens is empty", ("input", "card", "tokens"))
        seen: set[str] = set()
        for i, (provider, token) in enumerate(card.tokens):
            field = ("input", "card", "tokens", str(i))
            if provider in seen:
                raise InvalidInput(f"two tokens for {provider!r}", (*field, "provider"))
            seen.add(provider)
            tokens += ((provider, _token(token, (*field, "token"))),)
    single = _token(card.token, ("input", "card", "token")) if card.token is not None else None
    count = card.installments
    if count is not None and not 1 <= count <= MAX_INSTALLMENTS:
        raise InstallmentsUnavailable(
            f"{count} is not a number of months a plan could have",
            ("input", "card", "installments"),
        )
    return replace(
        base,
        card_token=single,
        card_tokens=tokens,
        # One payment is no plan at all.
        installments=count if count and count > 1 else None,
        require_three_d_secure=card.three_d_secure is ThreeDSecure.REQUIRED,
        capture_later=intent.capture_later,
        return_url=f"{public_url}/payments/{intent.id}/return",
    )


def _token(value: str, field: tuple[str, ...]) -> str:
    token = value.strip()
    if not token or len(token) > MAX_TOKEN or not token.isprintable():
        raise InvalidInput("a card token is a PSP's token, such as tok_…", field)
    return token


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    local, at, domain = value.partition("@")
    well_formed = at and local and "." in domain and " " not in value and value.isprintable()
    if not well_formed or len(value) > 254:
        raise InvalidInput(f"{value!r} is not an email address", ("input", "oxxo", "email"))
    return value
