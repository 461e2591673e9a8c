"""Payment links: created and turned off by the merchant's secret key, opened by
anyone who has the URL. A visit opens a new intent of the link's merchant (as that
merchant, through IntentService.create, so the intent has its audit and outbox rows
like any other) and the page sends the visitor to its checkout."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import audit
from app.db.repositories import merchants as merchant_rows
from app.db.repositories import payment_links as link_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.errors import InvalidInput, NotFound
from app.domain.ids import looks_like_id, new_id
from app.domain.intents import PaymentIntent
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, parse_amount
from app.domain.payment_links import (
    LINK_METADATA_KEY,
    MAX_LIFETIME,
    MIN_LIFETIME,
    PaymentLink,
)
from app.domain.text import check_text
from app.services import idempotency
from app.services.auth import KeyKind, Principal, require_secret_key
from app.services.intents import MAX_DESCRIPTION, MAX_PAGE, CreateIntent, IntentService
from app.services.intents import validate_metadata as validate_intent_metadata

PREFIX = "plink"


@dataclass(frozen=True, slots=True)
class CreateLink:
    amount: object
    currency: Currency = Currency.MXN
    description: str | None = None
    allowed_methods: tuple[PaymentMethodType, ...] | None = None
    expires_at: datetime | None = None
    metadata: Any = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class LinkPage:
    links: list[PaymentLink]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class Visit:
    """What a visit to a link found: an intent to pay, or a link that is gone."""

    intent: PaymentIntent | None
    merchant_name: str


class PaymentLinkService:
    def __init__(self, db: Database, clock: Clock, intents: IntentService) -> None:
        self.db = db
        self.clock = clock
        self.intents = intents

    async def create(self, principal: Principal | None, command: CreateLink) -> PaymentLink:
        merchant_id = require_secret_key(principal).merchant_id
        key = idempotency.check_key(command.idempotency_key)
        amount = parse_amount(command.amount, command.currency, field=("input", "amount"))
        allowed = self.intents.allowed_methods(command.allowed_methods, amount) or None
        description = check_text(command.description, ("input", "description"), MAX_DESCRIPTION)
        metadata = _metadata(command.metadata)
        now = self.clock.now()
        expires_at = _expiry(command.expires_at, now)
        keyed = idempotency.keyed(
            merchant_id,
            "createPaymentLink",
            key,
            lambda: {
                "amount": amount.minor,
                "currency": amount.currency.value,
                "description": description,
                "allowed_methods": [m.value for m in allowed or ()],
                "expires_at": expires_at.isoformat() if expires_at else None,
                "metadata": metadata,
            },
        )
        async with self.db.transaction() as conn:
            replayed = await idempotency.begin_stored(conn, keyed, now)
            if replayed is not None:
                found = await link_rows.get(conn, replayed["payment_link"])
                assert found is not None, "a stored result names a link that exists"
                return found
            link = PaymentLink(
                id=new_id(PREFIX),
                merchant_id=merchant_id,
                amount=amount,
                description=description,
                allowed_methods=allowed,
                metadata=metadata,
                active=True,
                expires_at=expires_at,
                created_at=now,
            )
            await link_rows.insert_link(conn, link)
            await _audit(conn, link, "payment_link.created", now)
            await idempotency.finish_stored(conn, keyed, {"payment_link": link.id}, link.id, now)
        return link

    async def deactivate(self, principal: Principal | None, link_id: str) -> PaymentLink:
        """Turn a link off for good: later visits get the 410 page. Twice is fine."""
        merchant_id = require_secret_key(principal).merchant_id
        now = self.clock.now()
        async with self.db.transaction() as conn:
            link = await link_rows.get(conn, link_id) if looks_like_id(link_id, PREFIX) else None
            if link is None or link.merchant_id != merchant_id:
                raise NotFound(f"no payment link {link_id!r}", ("id",))
            if not link.active:
                return link
            await link_rows.deactivate(conn, link.id)
            await _audit(conn, link, "payment_link.deactivated", now)
        return replace(link, active=False)

    async def list(self, principal: Principal | None, *, first: int, after: str | None) -> LinkPage:
        merchant_id = require_secret_key(principal).merchant_id
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", ("first",))
        position = decode_link_cursor(after) if after else None
        async with self.db.read() as conn:
            found = await link_rows.page(conn, merchant_id, limit=first + 1, after=position)
        return LinkPage(found[:first], has_next_page=len(found) > first)

    async def visit(self, link_id: str) -> Visit | None:
        """A new intent of the link's merchant; None for no such link; a Visit
        without an intent when the link is inactive or expired."""
        if not looks_like_id(link_id, PREFIX):
            return None
        async with self.db.read() as conn:
            link = await link_rows.get(conn, link_id)
            name = await merchant_rows.merchant_name(conn, link.merchant_id) if link else None
        if link is None:
            return None
        if not link.is_open(self.clock.now()):
            return Visit(None, name or "")
        as_merchant = Principal(link.merchant_id, KeyKind.SECRET)
        result = await self.intents.create(
            as_merchant,
            CreateIntent(
                amount=link.amount.to_decimal_string(),
                currency=link.amount.currency,
                description=link.description,
                metadata=link.intent_metadata(),
                allowed_methods=link.allowed_methods,
            ),
        )
        assert result.intent is not None, "a link's own amount and methods make an intent"
        return Visit(result.intent, name or "")


def link_cursor(link: PaymentLink) -> str:
    raw = f"{link.created_at.isoformat()}|{link.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_link_cursor(cursor: str) -> tuple[datetime, str]:
    invalid = InvalidInput("after is not a cursor this API gave out", ("after",))
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, link_id = raw.partition("|")
        moment = datetime.fromisoformat(created)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if moment.tzinfo is None or not looks_like_id(link_id, PREFIX):
        raise invalid
    return moment.astimezone(UTC), link_id


def _metadata(metadata: Any) -> dict[str, Any] | None:
    """The intent's limits, with room for the link's own key in each intent."""
    checked = validate_intent_metadata(metadata)
    if checked is None:
        return None
    if LINK_METADATA_KEY in checked:
        raise InvalidInput(
            f"metadata key {LINK_METADATA_KEY!r} is Cobro's: each intent names its link there",
            ("input", "metadata"),
        )
    validate_intent_metadata({**checked, LINK_METADATA_KEY: "plink"})
    return checked


def _expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    field = ("input", "expiresAt")
    if expires_at.tzinfo is None:
        raise InvalidInput("expiresAt needs a UTC offset", field)
    expires_at = expires_at.astimezone(UTC)
    if not now + MIN_LIFETIME <= expires_at <= now + MAX_LIFETIME:
        raise InvalidInput("expiresAt must be between 5 minutes and 365 days from now", field)
    return expires_at


async def _audit(conn: AsyncConnection, link: PaymentLink, event_type: str, now: datetime) -> None:
    data = {"amount": link.amount.to_decimal_string(), "currency": link.amount.currency.value}
    await audit.append(
        conn,
        intent_id=link.id,
        merchant_id=link.merchant_id,
        events=[NewAuditEvent(event_type, data=data)],
        at=now,
    )
