"""The adapter protocol and the neutral values that cross it.

The core never sees a PSP's wire format: it sends a `PaymentRequest` and gets a
`ProviderPayment` (or a `ProviderError` that says whether trying again elsewhere
makes sense). Each PSP status maps to `ProviderStatus` through an explicit table
in its adapter; anything unknown maps to PENDING, never to success.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from app.domain.methods import PaymentMethodType
from app.domain.money import Money
from app.domain.next_action import NextAction
from app.domain.plain import Codec


class ProviderStatus(enum.StrEnum):
    PENDING = "pending"  # nothing definite yet: wait, or ask again
    REQUIRES_ACTION = "requires_action"  # the customer must act (voucher, transfer, 3-D Secure)
    REQUIRES_CAPTURE = "requires_capture"  # a card authorized, its money held until captured
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """How to reach a PSP, given by the composition root (adapters read no settings)."""

    base_url: str
    api_key: str
    api_secret: str = ""
    webhook_secrets: tuple[str, ...] = ()
    timeout_seconds: float = 3.0
    connect_timeout_seconds: float = 1.0
    # PSP-specific settings (STP: empresa, signing key, CLABE prefix; Conekta: webhook key).
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    intent_id: str
    amount: Money
    method: PaymentMethodType
    description: str | None = None
    card_token: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    expires_at: datetime | None = None  # OXXO voucher / SPEI reference lifetime
    expires_in_days: int | None = None
    crypto_asset: str | None = None
    crypto_network: str | None = None
    payer_clabe: str | None = None
    # A number unique to this attempt, allocated by the core for SPEI attempts: SPEI
    # references and per-intent CLABEs are built from it (adapters keep no state).
    reference_number: int | None = None
    # Where the PSP sends the customer back after 3-D Secure, and the attempt's own id
    # (echoed in the PSP's metadata, so a search finds which attempt a charge is).
    # Both are fixed when the attempt is recorded, never by whoever replays it.
    return_url: str | None = None
    attempt_id: str | None = None
    # Cards (contract section 7). One token per PSP the checkout tokenized with, before
    # an attempt picks its PSP (`for_provider`); months of meses sin intereses (None:
    # one payment); whether to ask for 3-D Secure on every payment rather than let the
    # PSP decide; whether to authorize only, for a capture later.
    card_tokens: tuple[tuple[str, str], ...] = ()
    installments: int | None = None
    require_three_d_secure: bool = False
    capture_later: bool = False

    def for_provider(self, provider: str) -> PaymentRequest:
        """This request as `provider` is sent it: with the card token it minted."""
        tokens = dict(self.card_tokens)
        if not tokens:
            return self
        return replace(self, card_token=tokens.get(provider), card_tokens=())

    def to_dict(self) -> dict[str, Any]:
        """The request as stored on the attempt row, to replay it after a crash."""
        return _REQUEST_JSON.to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PaymentRequest:
        return _REQUEST_JSON.from_plain(data)


@dataclass(frozen=True, slots=True)
class WireRequest:
    """The exact HTTP request that creates a payment: method, path, body bytes and the
    headers that change its meaning (idempotency key, content type, API version).

    It is built once, stored on the attempt before it is sent, and every replay sends
    it as stored, whoever replays it and however that process is configured; only the
    credentials (Authorization, a per-call signature) are added at sending time."""

    method: str
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body.decode(),
            "headers": [list(h) for h in self.headers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WireRequest:
        return cls(
            method=data["method"],
            path=data["path"],
            body=data["body"].encode(),
            headers=tuple((str(k), str(v)) for k, v in data["headers"]),
        )


@dataclass(frozen=True, slots=True)
class Deposit:
    """One transfer or deposit into a payment (SPEI, crypto), named as its webhook
    names it, so that learning of it twice (webhook and reconciliation) counts once."""

    event_id: str
    amount: int  # minor units credited by this deposit


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """What a PSP says about one payment, in neutral terms."""

    provider_ref: str  # the PSP's own id for the payment
    status: ProviderStatus
    next_action: NextAction | None = None
    amount_received: int | None = None  # minor units, when the PSP reports it
    error_code: str | None = None  # a contract code such as CARD_DECLINED
    error_message: str | None = None
    # Other handles a webhook may use for this payment (OXXO reference, CLABE, address).
    lookup_keys: tuple[str, ...] = ()
    # Deposits so far, for methods paid in by transfers (fetch_payment fills it).
    deposits: tuple[Deposit, ...] = ()
    # The attempt id our metadata carried, when the PSP echoes it (search results).
    attempt_hint: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_id: str
    intent_id: str
    amount: Money
    provider_ref: str | None = None  # the payment being refunded, for card refunds
    clabe: str | None = None  # where an SPEI refund goes
    beneficiary: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    provider_ref: str
    status: ProviderStatus  # SUCCEEDED, PENDING or FAILED
    error_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    """An SPEI transfer out of the merchant's account, as Cobro recorded it. Every
    field is fixed when the payout is created, so a replay signs the same order."""

    payout_id: str
    amount: Money
    clabe: str
    beneficiary_name: str
    concept: str
    reference: int
    tracking_key: str
    rfc: str | None = None


class PayoutState(enum.StrEnum):
    """Where a PSP says a payout is; anything unknown is IN_TRANSIT, never paid."""

    IN_TRANSIT = "in_transit"
    PAID = "paid"
    RETURNED = "returned"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProviderPayout:
    provider_ref: str  # the PSP's id for the transfer (STP's folio)
    state: PayoutState
    return_code: str | None = None  # SPEI causa de devolución, when RETURNED
    message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class PayoutProvider(Protocol):
    """A PSP that sends SPEI transfers out: build the order once (pure), send stored
    bytes (a replay sends the same ones), ask where a transfer is by its tracking key."""

    name: str

    def prepare_payout(self, request: PayoutRequest) -> WireRequest: ...

    async def send_payout(self, request: PayoutRequest, wire: WireRequest) -> ProviderPayout: ...

    async def fetch_payout(self, request: PayoutRequest) -> ProviderPayout | None: ...


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One webhook event, verified and parsed into neutral terms."""

    provider: str
    event_id: str  # unique per provider: the inbox key that makes replays no-ops
    type: str  # the PSP's own event name, kept for the audit trail
    status: ProviderStatus | None
    provider_ref: str | None = None
    lookup_key: str | None = None
    amount: int | None = None  # minor units paid in by this event (SPEI, crypto deposits)
    refund_ref: str | None = None  # set when the event is about a refund/payout
    occurred_at: datetime | None = None
    # Our intent id, when the PSP echoes it back (metadata): finds the payment even
    # when no handle was recorded (the call that created it timed out).
    intent_hint: str | None = None
    # SPEI's causa de devolución of a returned transfer (STP's DEVOLUCION).
    return_code: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def handle(self) -> str | None:
        """The name this event gives its payment (or refund), most specific first."""
        return self.provider_ref or self.lookup_key or self.refund_ref

    def to_dict(self) -> dict[str, Any]:
        """The event as stored in the inbox, to apply again without the signature."""
        return _EVENT_JSON.to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderEvent:
        return _EVENT_JSON.from_plain(data)


# Plain forms derived from the dataclasses above (app/domain/plain.py): a new field is
# stored with the rest. An event's raw body is not kept: it was verified and parsed.
# A request's card tokens, one per PSP, are not stored: an attempt is for one PSP, and
# holds its token alone (`for_provider`).
_REQUEST_JSON: Codec[PaymentRequest] = Codec(PaymentRequest, exclude=("card_tokens",))
_EVENT_JSON: Codec[ProviderEvent] = Codec(ProviderEvent, exclude=("raw",))


# The code of a ProviderError for a request the PSP refused on its merits (a 4xx that
# is not about rate or auth): trying the same thing again will not help.
INVALID_REQUEST = "INVALID_REQUEST"
# The code of a ProviderError for "this idempotency key was first used with other
# parameters" (Stripe's 400 idempotency_error and its equivalents). The PSP did
# something with that key, and does not say what: the outcome is unknown, never failed.
IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
# Codes of a ProviderError for a card request the PSP refused on its merits, which the
# contract names: the PSP does not know the token (another PSP minted it), or the card
# or the amount does not qualify for the installment plan asked for.
CARD_TOKEN_INVALID = "CARD_TOKEN_INVALID"
INSTALLMENTS_UNAVAILABLE = "INSTALLMENTS_UNAVAILABLE"


class ProviderError(Exception):
    """A call that got no usable answer.

    `retryable` says whether another try may work: timeouts, 5xx and 429 are; a
    request the PSP refuses on its merits is not. Only retryable errors count
    against the PSP's circuit breaker. `outcome_unknown` says whether the PSP may
    have acted on it anyway.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retryable: bool,
        code: str = "PROVIDER_ERROR",
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.retryable = retryable
        self.code = code
        # The request may have been carried out (read timeout, 500, 502, 504): money
        # may have moved. Not safe to send the same payment to another PSP; safe to
        # send the same request, with the same idempotency key, to the same PSP.
        self.outcome_unknown = outcome_unknown


class WebhookRejected(Exception):
    """A webhook we will not accept because nothing proves the PSP sent it: a bad or
    missing signature, a stale timestamp, a body the signature cannot be checked on.
    Nothing is stored; the webhook door answers 400."""


class MalformedEvent(WebhookRejected):
    """A validly signed event whose content is not what the PSP documents.

    The PSP did send it, so sending it again will not mend it: the webhook door stores
    it as rejected, with `reason`, changes nothing else, and acknowledges it so the
    PSP stops retrying. `reply` is the acknowledgement body the PSP expects for a
    refusal when it expects one (STP: a transfer is returned with a SPEI cause);
    None means the door's own {"received": [...]}."""

    def __init__(self, reason: str, *, reply: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


@runtime_checkable
class Captures(Protocol):
    """A card PSP that authorizes now and captures later (contract section 7). The
    authorization is voided by `Provider.cancel_payment`."""

    async def capture_payment(
        self, provider_ref: str, amount: int, idempotency_key: str
    ) -> ProviderPayment:
        """Capture `amount` minor units of the authorization; the rest is released."""
        ...


class Provider(Protocol):
    name: str
    methods: frozenset[PaymentMethodType]

    def prepare_payment(self, request: PaymentRequest, idempotency_key: str) -> WireRequest:
        """The request that creates this payment, built from `request` alone (pure)."""
        ...

    async def send_payment(self, request: PaymentRequest, wire: WireRequest) -> ProviderPayment:
        """Send `wire` as it is; `request` only helps read the answer."""
        ...

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment: ...

    async def search_payments(self, intent_id: str) -> list[ProviderPayment] | None:
        """The PSP's payments whose metadata names our intent; None if it cannot search."""
        ...

    async def fetch_payment(self, provider_ref: str) -> ProviderPayment: ...

    async def cancel_payment(self, provider_ref: str, idempotency_key: str) -> ProviderPayment: ...

    async def refund(self, request: RefundRequest, idempotency_key: str) -> ProviderRefund: ...

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]: ...

    async def aclose(self) -> None: ...
