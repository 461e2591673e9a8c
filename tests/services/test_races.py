"""Two requests with one idempotency key at the same moment: one runs, neither
charges or refunds twice, and nobody gets a 500."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from app.db.repositories import intents as intent_rows
from app.db.tables import PaymentIntentRow, Refund
from app.domain.errors import CobroError
from app.domain.methods import PaymentMethodType
from app.services.auth import Principal
from app.services.intents import CreateIntent
from app.services.payment_requests import CardOptions, ConfirmIntent
from app.services.refunds import RefundCommand

LEASE = timedelta(seconds=60)


async def merchant(runtime) -> Principal:
    return await runtime.services.auth.principal_for("sk_test_dev")


async def count(runtime, table) -> int:
    async with runtime.services.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)))


def codes(outcomes: list[object]) -> list[str]:
    return sorted(o.code if isinstance(o, CobroError) else "ok" for o in outcomes)


async def test_two_creates_with_one_key_make_one_intent(runtime):
    me = await merchant(runtime)
    command = CreateIntent(amount="100.00", idempotency_key="same-key")
    first, second = await asyncio.gather(
        runtime.services.intents.create(me, command), runtime.services.intents.create(me, command)
    )
    assert first.intent.id == second.intent.id
    assert await count(runtime, PaymentIntentRow.__table__) == 1


async def test_two_refunds_with_one_key_refund_once(runtime):
    services = runtime.services
    me = await merchant(runtime)
    intent = (await services.intents.create(me, CreateIntent(amount="300.00"))).intent
    await services.confirm.confirm(
        me, ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    )
    command = RefundCommand(intent.id, amount="100.00", idempotency_key="refund-once")
    outcomes = await asyncio.gather(
        services.refunds.refund(me, command),
        services.refunds.refund(me, command),
        return_exceptions=True,
    )
    assert codes(outcomes) in (["IDEMPOTENCY_IN_PROGRESS", "ok"], ["ok", "ok"])
    assert await count(runtime, Refund.__table__) == 1
    after = await services.intents.get(me, intent.id)
    assert after.amount_refunded.minor == 10_000
    again = await services.refunds.refund(me, command)  # once finished: the first result
    assert again.intent.amount_refunded.minor == 10_000


async def test_one_key_on_two_intents_at_once_confirms_one(runtime):
    services = runtime.services
    me = await merchant(runtime)
    a = (await services.intents.create(me, CreateIntent(amount="100.00"))).intent
    b = (await services.intents.create(me, CreateIntent(amount="700.00"))).intent
    card = CardOptions("tok_visa")
    outcomes = await asyncio.gather(
        services.confirm.confirm(
            me, ConfirmIntent(a.id, PaymentMethodType.CARD, card, idempotency_key="k")
        ),
        services.confirm.confirm(
            me, ConfirmIntent(b.id, PaymentMethodType.CARD, card, idempotency_key="k")
        ),
        return_exceptions=True,
    )
    assert codes(outcomes) == ["IDEMPOTENCY_CONFLICT", "ok"]
    statuses = sorted([(await services.intents.get(me, i.id)).status.value for i in (a, b)])
    assert statuses == ["REQUIRES_PAYMENT_METHOD", "SUCCEEDED"]
    store = runtime.sandbox.state.store
    charged = [pi for i in (a, b) for pi in await store.find("stripe", "payment_intent", i.id)]
    assert len(charged) == 1


async def test_a_confirmation_turned_away_by_a_lease_frees_its_key(runtime):
    """The key is claimed before the intent is leased, each step on its own
    (Database.steps): when the lease is someone else's, the claim is given back, so
    the client's retry with the same key runs instead of waiting for it to lapse."""
    services = runtime.services
    me = await merchant(runtime)
    intent = (await services.intents.create(me, CreateIntent(amount="100.00"))).intent
    now = services.clock.now()
    async with services.db.transaction() as conn:  # another confirmation holds it
        assert await intent_rows.take_lease(conn, intent.id, intent.version, now, now + LEASE)
    command = ConfirmIntent(
        intent.id, PaymentMethodType.CARD, CardOptions("tok_visa"), idempotency_key="retry-me"
    )
    outcomes = await asyncio.gather(services.confirm.confirm(me, command), return_exceptions=True)
    assert codes(outcomes) == ["INVALID_STATE"]
    async with services.db.transaction() as conn:
        await intent_rows.release_lease(conn, intent.id, now + LEASE)
    result = await services.confirm.confirm(me, command)
    assert result.intent.status.value == "SUCCEEDED"
