"""Crash safety and concurrency of confirmation, on a real SQLite database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from app.db.repositories import attempts as attempt_rows
from app.db.repositories.attempts import Attempt
from app.db.tables import PaymentIntentRow, ProviderPayment
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency
from app.services.auth import KeyKind, Principal
from app.services.intents import CreateIntent
from app.services.payment_requests import CardOptions, ConfirmIntent
from providers.base import PaymentRequest


async def _merchant(runtime) -> Principal:
    principal = await runtime.services.auth.principal_for("sk_test_dev")
    assert principal.kind is KeyKind.SECRET
    return principal


async def test_a_crash_after_the_psp_call_neither_loses_nor_doubles_the_payment(runtime):
    services = runtime.services
    merchant = await _merchant(runtime)
    intent = (await services.intents.create(merchant, CreateIntent(amount="300.00"))).intent
    store = runtime.sandbox.state.store
    # given: the attempt was recorded and Stripe was called, then the process died
    # before our commit (the lease it held has since run out)
    request = PaymentRequest(
        intent_id=intent.id,
        amount=intent.amount,
        method=PaymentMethodType.CARD,
        card_token="tok_visa",
    )
    attempt = Attempt(
        "pp_crashed",
        intent.id,
        "stripe",
        "CARD",
        "cobro-pp_crashed",
        "pending",
        None,
        request.to_dict(),
    )
    now = services.clock.now()
    async with services.db.transaction() as conn:
        await attempt_rows.insert_attempt(conn, attempt, now)
        await conn.execute(
            update(PaymentIntentRow.__table__)
            .where(PaymentIntentRow.__table__.c.id == intent.id)
            .values(lease_until=now - timedelta(seconds=1))
        )
    charged = await services.router.call(
        "stripe", lambda p: p.create_payment(request, attempt.idempotency_key)
    )
    charges_before = len(await store.find("stripe", "payment_intent", intent.id))

    # when: the customer retries the confirmation
    result = await services.confirm.confirm(
        merchant, ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    )

    # then: the first charge is the payment, and Stripe was not asked to charge again
    assert result.intent.status.value == "SUCCEEDED"
    assert len(await store.find("stripe", "payment_intent", intent.id)) == charges_before
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    ProviderPayment.__table__.c.status, ProviderPayment.__table__.c.provider_ref
                ).where(ProviderPayment.__table__.c.intent_id == intent.id)
            )
        ).all()
    assert [(r.status, r.provider_ref) for r in rows] == [("succeeded", charged.provider_ref)]


async def test_two_confirmations_at_once_pay_once(runtime):
    services = runtime.services
    merchant = await _merchant(runtime)
    intent = (await services.intents.create(merchant, CreateIntent(amount="300.00"))).intent
    command = ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    outcomes = await asyncio.gather(
        services.confirm.confirm(merchant, command),
        services.confirm.confirm(merchant, command),
        return_exceptions=True,
    )
    succeeded = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(succeeded) == 1 and succeeded[0].intent.status.value == "SUCCEEDED"
    assert len(refused) == 1 and refused[0].code == "INVALID_STATE"
    async with services.db.read() as conn:
        attempts = (
            await conn.execute(
                select(ProviderPayment.__table__.c.id).where(
                    ProviderPayment.__table__.c.intent_id == intent.id
                )
            )
        ).all()
    assert len(attempts) == 1


async def test_listing_intents_with_events_is_two_queries(runtime):
    from resolvers.context import Context
    from resolvers.schema import build_schema

    services = runtime.services
    merchant = await _merchant(runtime)
    for amount in ("100.00", "200.00", "300.00", "400.00", "500.00"):
        await services.intents.create(merchant, CreateIntent(amount=amount, currency=Currency.MXN))
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = services.db.read_engine
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", count)
    try:
        result = await build_schema().execute(
            "query { paymentIntents(first: 5) { edges { node { id events { type } } } } }",
            context_value=Context(services, principal=merchant),
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result.errors is None
    assert len(result.data["paymentIntents"]["edges"]) == 5
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects
