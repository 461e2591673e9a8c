"""The tables. Money is integer minor units; times are aware UTC.

Repositories query these through SQLAlchemy Core statements (no ORM identity
map on the hot path); the declarative classes give them types and give Alembic
its metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db import audit_link
from app.db.types import BigIntId, UTCDateTime

# Stable constraint names, so migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}

    if TYPE_CHECKING:
        # SQLAlchemy types this as any FromClause (a class may map a subquery); every
        # class here maps a Table, which is what insert(), update() and delete() take.
        __table__: ClassVar[Table]


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ApiKey(Base):
    """A secret or publishable key, stored only as its SHA-256 digest."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "secret" | "publishable"
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown in logs, never the key
    last4: Mapped[str] = mapped_column(String(4))  # shown by `apiKeys`; "" if never known
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Set when the key is rolled: it keeps working until then (contract section 10).
    expires_at: Mapped[datetime | None]


class PaymentIntentRow(Base):
    __tablename__ = "payment_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    amount_received: Mapped[int] = mapped_column(BigInteger)
    amount_refunded: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str | None] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    allowed_methods: Mapped[list[Any]] = mapped_column(JSON)
    client_secret: Mapped[str] = mapped_column(String(80))
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    # Meses sin intereses: the months a card payment is split into.
    installments: Mapped[int | None]
    # Capture later: AUTOMATIC or MANUAL; what an authorization still holds, and until when.
    capture_method: Mapped[str] = mapped_column(String(16), server_default="AUTOMATIC")
    amount_capturable: Mapped[int] = mapped_column(BigInteger, server_default="0")
    capture_before: Mapped[datetime | None]
    # Work in flight on the intent (a confirmation, an expiry) holds it until then,
    # so that two processes never act on it at once.
    lease_until: Mapped[datetime | None]
    # When reconciliation last asked the PSP about it (a webhook can be lost).
    checked_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "merchant_id", "created_at", "id"),
        Index(None, "merchant_id", "status", "created_at"),
    )


class CardCapture(Base):
    """The capture of an authorization, written before the PSP hears of it, so a
    capture whose answer was lost is replayed with the same key and amount, never
    sent again as a new one. A PSP allows one capture per authorization; one it
    refused (`failed`) leaves room for another."""

    __tablename__ = "card_captures"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # pending | succeeded | failed
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProviderPayment(Base):
    """One attempt at one PSP, written before the call with its idempotency key."""

    __tablename__ = "provider_payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    # pending -> succeeded | requires_action | processing | failed | error | unknown,
    # and extra: a charge the intent did not need (found by reconciliation, refunded)
    status: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(100))  # the PSP's own id
    # The PaymentRequest's fields and, under "wire", the exact request sent (replays too).
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    # When reconciliation should search the PSP for a payment this attempt may have made
    # though Cobro does not hold it (its outcome was unknown, or it was marked failed).
    # NULL for nearly every row, so the partial index costs the write path nothing.
    search_after: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index(None, "provider", "provider_ref"),
        Index(
            None,
            "search_after",
            sqlite_where=text("search_after IS NOT NULL"),
            postgresql_where=text("search_after IS NOT NULL"),
        ),
    )


class AuditEvent(Base):
    """The append-only trail: nothing updates or deletes these rows.

    Each merchant's events form a hash chain (app/domain/audit_chain.py): `seq` is
    the event's position in its merchant's chain, `prev_hash` the hash of the one
    before, `hash` this one's link. Unique on (merchant_id, seq): a fork cannot be
    written, whatever the writers do.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    # The object the event belongs to: a payment intent ("pi_") or a payout ("po_").
    intent_id: Mapped[str] = mapped_column(String(40), index=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(60))
    status: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime]
    # Null only inside the transaction that wrote it, on PostgreSQL: its content
    # split around the position it does not know yet, which the server links in
    # as that transaction commits (app/db/audit_link.py).
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    link_prefix: Mapped[bytes | None] = mapped_column(LargeBinary)
    link_suffix: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("merchant_id", "seq"),
        CheckConstraint(
            "(seq IS NULL) = (link_prefix IS NOT NULL) AND (seq IS NULL) = (link_suffix IS NOT "
            "NULL) AND (seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (hash IS NULL)",
            name="linked_or_awaiting_link",
        ),
    )


audit_link.install_on_create(AuditEvent.__table__)


class AuditChainHead(Base):
    """The last link of each merchant's audit chain. A transaction that writes audit
    events locks its merchant's row (FOR UPDATE on PostgreSQL; SQLite has one
    writer), chains its events on from here and moves the head, once, just before
    it commits. `cobro audit verify` also checks that the chain ends here, so a
    deleted last event shows."""

    __tablename__ = "audit_chain_heads"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyKey(Base):
    """The first result of a keyed mutation, replayed to every retry for 7 days."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    intent_id: Mapped[str | None] = mapped_column(String(40))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Null while the first request with this key is still running: a second one
    # waits its turn instead of running alongside it.
    finished_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("merchant_id", "operation", "key"),)


class ReferenceNumber(Base):
    """A counter: each PSP attempt gets a number no other attempt has (SPEI
    references and per-intent CLABEs are built from it)."""

    __tablename__ = "reference_numbers"

    number: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(String(40), unique=True)


class Refund(Base):
    """Money going back: to the card, or by SPEI to the customer's CLABE."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # pending -> (provider accepted it) processing -> succeeded | failed
    status: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    clabe: Mapped[str | None] = mapped_column(String(18))
    error_message: Mapped[str | None] = mapped_column(Text)
    # The merchant's own idempotency key, to finish its stored result when a refund
    # whose outcome was unknown is settled later by the worker.
    client_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The PSP payment this refund returns when it is not the intent's own: an extra
    # charge reconciliation found. NULL: the payment that paid the intent.
    charge_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Bumped on every change; its refund.* webhooks are outbox rows under the refund's id.
    version: Mapped[int] = mapped_column(server_default="1")

    __table_args__ = (Index(None, "provider", "provider_ref"),)


class PayoutRow(Base):
    """An SPEI transfer out of the merchant's account (contract section 8). Its
    versions go through the outbox and its audit events through the merchant's chain,
    like an intent's, under its own id."""

    __tablename__ = "payouts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    clabe: Mapped[str] = mapped_column(String(18))
    bank: Mapped[str] = mapped_column(String(60))
    beneficiary_name: Mapped[str] = mapped_column(String(60))
    concept: Mapped[str] = mapped_column(String(60))
    reference: Mapped[int]
    rfc: Mapped[str | None] = mapped_column(String(18))
    # Cobro's clave de rastreo, fixed at creation and reused by every replay.
    tracking_key: Mapped[str] = mapped_column(String(30), unique=True)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(100))  # the PSP's order id
    return_code: Mapped[str | None] = mapped_column(String(4))
    return_message: Mapped[str | None] = mapped_column(Text)
    failure_message: Mapped[str | None] = mapped_column(Text)
    refund_id: Mapped[str | None] = mapped_column(String(40))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    # Sending in flight holds the payout until then (one sender at a time).
    lease_until: Mapped[datetime | None]
    # When reconciliation last asked the PSP about it.
    checked_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "merchant_id", "created_at", "id"),
        Index(None, "merchant_id", "status", "created_at"),
        Index(None, "provider", "provider_ref"),
        Index(None, "status", "updated_at"),
        Index(None, "refund_id"),
    )


class PayoutAttempt(Base):
    """One try of a payout at one PSP, written with its exact request before the call,
    so an unknown outcome is replayed byte for byte to the same PSP."""

    __tablename__ = "payout_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    # pending (sent or about to be; outcome unknown) -> accepted | refused | unsent
    status: Mapped[str] = mapped_column(String(16))
    wire: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProviderHandle(Base):
    """A name a PSP uses for one of our payments (its id, an OXXO reference, a CLABE,
    a deposit address): how a webhook finds its intent."""

    __tablename__ = "provider_handles"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    handle: Mapped[str] = mapped_column(String(100), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("payment_intents.id"), index=True)
    attempt_id: Mapped[str] = mapped_column(String(40))


class WebhookInbox(Base):
    """Every PSP event as received, unique per (provider, event id): a replay is a no-op.

    Stored and applied in one transaction, and only then acknowledged. An event that
    matches no payment yet (it beat our own commit) waits here as `unmatched`. A
    validly signed event whose content is malformed is kept as `rejected` with its
    `reason`, under an id made from its body (its own may be the malformed part).
    """

    __tablename__ = "webhook_inbox"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    handle: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)  # the raw body, exactly as the PSP sent it
    event: Mapped[dict[str, Any]] = mapped_column(JSON)  # as the adapter parsed it
    # applied | ignored | unmatched | rejected
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)  # why a rejected event was refused
    intent_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        Index(None, "outcome", "provider", "handle"),
    )


class Outbox(Base):
    """The durable log of intent changes, written in the change's own transaction.

    The writing process publishes its rows at once (they are leased to it); any
    relay publishes rows whose lease ran out (their writer died). Rows are kept
    after publishing so a subscriber that missed a version can read it back.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    intent_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int]
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    # The W3C traceparent of the change that wrote the row (NULL when tracing is off),
    # so the publisher and the subscribers' pushes continue that trace (app/tracing.py).
    traceparent: Mapped[str | None] = mapped_column(String(55))

    __table_args__ = (
        UniqueConstraint("intent_id", "version"),
        Index(None, "published_at", "lease_until"),
        Index(None, "merchant_id", "created_at"),
    )


class PaymentLinkRow(Base):
    """A payment link (contract section 9): each visit opens an intent of its merchant."""

    __tablename__ = "payment_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    allowed_methods: Mapped[list[Any] | None] = mapped_column(JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    active: Mapped[bool]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (Index(None, "merchant_id", "created_at", "id"),)


class WebhookEndpoint(Base):
    """Where a merchant wants its events, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column(JSON)  # event types; ["*"] for all
    secret: Mapped[str] = mapped_column(String(100))
    # Secrets rolled away but still signing until their time: [{"secret", "expires_at"}].
    retiring_secrets: Mapped[list[Any] | None] = mapped_column(JSON)
    enabled: Mapped[bool]
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event owed to one endpoint, retried with backoff until acknowledged."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    merchant_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(80))
    event_type: Mapped[str] = mapped_column(String(60))
    intent_id: Mapped[str] = mapped_column(String(40))
    intent_version: Mapped[int]
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and sent, every attempt
    # pending -> delivered | failed (gave up after the retry window)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "endpoint_id", "intent_id", "intent_version"),
    )


class DeliveryAttempt(Base):
    """Each try of a delivery, as it went."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]
    at: Mapped[datetime]


class SandboxClock(Base):
    """The sandbox's time offset, shared by every process on the database."""

    __tablename__ = "sandbox_clock"

    id: Mapped[int] = mapped_column(primary_key=True)
    offset_seconds: Mapped[float]


# -- the sandbox's PSPs (never used in production; providers/sandbox/store.py) ---------


class SandboxObject(Base):
    """One object a sandbox PSP holds (a Stripe PaymentIntent, a Conekta order, an STP
    order, a Bitso quote...), as that emulator's JSON, with a version that every write
    checks and bumps, so concurrent writers never lose each other's updates."""

    __tablename__ = "sandbox_objects"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    ref: Mapped[str | None] = mapped_column(String(128))  # a second way to find it
    version: Mapped[int]
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("provider", "kind", "key"),
        Index(None, "provider", "kind", "ref"),
    )


class SandboxHandle(Base):
    """A name a customer pays through ("oxxo:<reference>", "clabe:<CLABE>",
    "address:<deposit address>", "3ds:<Cobro intent id>") and the object it leads to."""

    __tablename__ = "sandbox_handles"

    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))


class SandboxIdempotency(Base):
    """The first answer a sandbox PSP gave to an Idempotency-Key, replayed to retries."""

    __tablename__ = "sandbox_idempotency"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    body: Mapped[bytes] = mapped_column(LargeBinary)


class SandboxFault(Base):
    """A sandbox PSP's fault mode, and its calls counted in that mode (for `flaky`)."""

    __tablename__ = "sandbox_faults"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))
    calls: Mapped[int]


class SandboxWebhook(Base):
    """A webhook a sandbox PSP sent, as sent, for /sandbox/webhooks/redeliver."""

    __tablename__ = "sandbox_webhooks"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    body: Mapped[bytes] = mapped_column(LargeBinary)


class PersistedQuery(Base):
    """A GraphQL document known by its SHA-256 (Apollo's automatic persisted queries),
    so that every API process can answer a hash another one learnt."""

    __tablename__ = "persisted_queries"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    query: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
