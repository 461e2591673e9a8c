"""A confirmation settles its intent from the intent as it read it before the lease,
without reading it again (intents.save with `unless_waiting`: on PostgreSQL one
statement, no BEGIN, locked read or COMMIT of its own). That save is refused when
the intent moved meanwhile or a webhook for the payment waits in the inbox; the
transaction then writes nothing, and the confirmation reads, locks and settles the
intent as it is now. Both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db.repositories import attempts as attempt_rows
from app.db.repositories import audit, handles, inbox
from app.db.repositories import intents as intent_rows
from app.db.tables import ProviderHandle
from app.domain.errors import IdempotencyInProgress, InvalidState
from app.domain.intents import PaymentIntentStatus
from app.domain.methods import PaymentMethodType
from app.metrics import REGISTRY
from app.services import idempotency
from app.services.changes import record_change, status_event
from app.services.intents import CreateIntent
from app.services.payment_requests import CardOptions, ConfirmIntent
from providers.base import ProviderEvent, ProviderPayment, ProviderStatus
from tests.conftest import DEV_SECRET
from tests.support.postgres import statements_logged
from tests.support.statement_log import logged_services


async def _waiting_event(services, handle: str, event_id: str = "evt_early") -> int:
    """An event for `handle` that came before the handle was known: unmatched."""
    async with services.db.transaction() as conn:
        row_id = await inbox.store(
            conn,
            provider="stripe",
            event_id=event_id,
            event_type="payment_intent.succeeded",
            handle=handle,
            body="{}",
            event={},
            now=services.intents.clock.now(),
        )
        assert row_id is not None
        await inbox.set_outcome(conn, row_id, "unmatched", None)
    return row_id


async def _handles_of(services, intent_id: str) -> int:
    T = ProviderHandle.__table__
    async with services.db.read() as conn:
        count = select(func.count()).select_from(T).where(T.c.intent_id == intent_id)
        return int((await conn.execute(count)).scalar_one())


async def _warm_then_a_new_intent(services):
    """The dev merchant and a new 250.00 intent, after two card payments: kept
    statements are written behind from their second run, as in a warm process."""
    me = await services.auth.principal_for(DEV_SECRET)
    for _ in range(2):
        other = (await services.intents.create(me, CreateIntent(amount="10.00"))).intent
        assert other is not None
        paid = ConfirmIntent(other.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
        await services.confirm.confirm(me, paid)
    intent = (await services.intents.create(me, CreateIntent(amount="250.00"))).intent
    assert intent is not None
    return me, intent


def _an_event_as_the_card_call_returns(
    services,
    monkeypatch,
    naming: Callable[[ProviderPayment], dict[str, str | None]],
    outcome: str,
) -> None:
    """Stripe's adapter, with a "succeeded" event for the payment received after the
    sandbox answered and before Cobro applies the answer: `naming` says how the event
    names it (ProviderEvent's fields), `outcome` what the inbox makes of it."""
    stripe = services.confirm.router.providers["stripe"]
    real_send = stripe.send_payment

    async def send_then_event(request, wire):
        payment = await real_send(request, wire)  # the sandbox, over its transport
        event = ProviderEvent(
            provider="stripe",
            event_id="evt_as_the_call_returns",
            type="payment_intent.succeeded",
            status=ProviderStatus.SUCCEEDED,
            **naming(payment),
        )
        (received,) = await services.provider_events.receive([event], b"{}")
        assert received.outcome == outcome
        return payment

    monkeypatch.setattr(stripe, "send_payment", send_then_event)


async def test_the_unread_save_is_refused_when_the_intent_moved_or_an_event_waits(
    runtime,
) -> None:
    services = runtime.services
    me = await services.auth.principal_for("sk_test_dev")
    intent = (await services.intents.create(me, CreateIntent(amount="10.00"))).intent
    now = services.intents.clock.now()
    moved = intent.moved_to(PaymentIntentStatus.CANCELED, now)

    async def save(before_version: int, waiting_for: tuple[str, list[str]]) -> None:
        async with services.db.transaction() as conn:
            await handles.remember(conn, "stripe", ["pi_psp_new"], intent.id, "pp_x")
            await intent_rows.save(
                conn, moved, previous_version=before_version, unless_waiting=waiting_for
            )

    await _waiting_event(services, "pi_psp_1")
    for waiting_for in (("stripe", ["ch_other", "pi_psp_1"]), ("stripe", ["pi_psp_1"])):
        with pytest.raises(IntegrityError) as refused:
            await save(intent.version, waiting_for)
        assert intent_rows.moved_meanwhile(refused.value)
    with pytest.raises(IntegrityError) as refused:  # a version that is not the row's
        await save(intent.version + 1, ("stripe", ["pi_psp_2"]))
    assert intent_rows.moved_meanwhile(refused.value)
    # Refused: nothing of the transaction was written, the handle included.
    assert await _handles_of(services, intent.id) == 0
    async with services.db.read() as conn:
        assert (await intent_rows.get(conn, intent.id)) == intent

    # Another PSP's name, or other handles: nothing waits for them.
    await save(intent.version, ("conekta", ["pi_psp_1"]))
    async with services.db.read() as conn:
        stored = await intent_rows.get(conn, intent.id)
    assert stored is not None
    assert (stored.status, stored.version) == (PaymentIntentStatus.CANCELED, intent.version + 1)
    assert await _handles_of(services, intent.id) == 1


async def test_only_the_guard_s_refusal_counts_as_moved_meanwhile(runtime) -> None:
    services = runtime.services
    await _waiting_event(services, "pi_psp_1", "evt_twice")
    with pytest.raises(IntegrityError) as duplicate:
        async with services.db.transaction() as conn:
            await conn.execute(
                inbox.T.insert().values(
                    provider="stripe",
                    event_id="evt_twice",
                    event_type="x",
                    body="{}",
                    event={},
                    outcome="received",
                    received_at=services.intents.clock.now(),
                )
            )
    assert not intent_rows.moved_meanwhile(duplicate.value)


async def test_a_confirmation_whose_webhook_came_first_applies_it_when_it_settles(
    runtime, monkeypatch
) -> None:
    """The PSP answers that the card needs 3-D Secure, and its event that the payment
    succeeded arrives before the answer is applied, naming only the PSP's reference:
    unmatched, it waits. Settling refuses the unread save, reads and locks the
    intent, and applies the waiting event in the same transaction."""
    services = runtime.services
    me, intent = await _warm_then_a_new_intent(services)

    def changes(status: str) -> float:
        labels = {"status": status}
        return REGISTRY.get_sample_value("cobro_intent_changes_total", labels) or 0.0

    counted = {s: changes(s) for s in ("REQUIRES_ACTION", "SUCCEEDED")}
    naming = lambda payment: {"provider_ref": payment.provider_ref}  # noqa: E731
    # The PSP's name for the payment alone, not yet known to Cobro: unmatched, it waits.
    _an_event_as_the_card_call_returns(services, monkeypatch, naming, "unmatched")
    card = CardOptions("tok_threeDSecureRequired")
    result = await services.confirm.confirm(
        me, ConfirmIntent(intent.id, PaymentMethodType.CARD, card=card)
    )
    assert result.intent.status is PaymentIntentStatus.SUCCEEDED
    outcome = select(inbox.T.c.outcome, inbox.T.c.intent_id).where(
        inbox.T.c.event_id == "evt_as_the_call_returns"
    )
    async with services.db.read() as conn:
        stored = await intent_rows.get(conn, intent.id)
        applied = (await conn.execute(outcome)).one()
        trail = (await audit.for_intents(conn, [intent.id]))[intent.id]
    assert stored is not None and stored.status is PaymentIntentStatus.SUCCEEDED
    assert tuple(applied) == ("applied", intent.id)
    # Each change counted once, as it committed: the refused save counted nothing.
    assert {s: changes(s) - n for s, n in counted.items()} == {
        "REQUIRES_ACTION": 1,
        "SUCCEEDED": 1,
    }
    events = [e.type for e in trail]
    assert events[-4:] == [
        "intent.confirmed",
        "intent.requires_action",
        "webhook.received",
        "intent.succeeded",
    ], events


async def test_on_postgresql_a_card_payment_is_confirmed_in_three_statements(
    databases, database_url, request
) -> None:
    """PostgreSQL's own log of a warm card payment's confirmation, but for the PSP's
    own: no BEGIN, COMMIT or locked read. The intent is read; the lease goes with the
    first attempt and its audit event (intents.lease_unless_busy); the attempt's
    outcome, the handles, the new version, its audit events and its outbox row go
    as one statement."""
    async with logged_services(request, databases, database_url) as (services, me, log):

        async def confirmation() -> list[str]:
            intent = (await services.intents.create(me, CreateIntent(amount="250.00"))).intent
            assert intent is not None
            start = log.stat().st_size
            card = ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
            result = await services.confirm.confirm(me, card)
            assert result.intent is not None
            assert result.intent.status is PaymentIntentStatus.SUCCEEDED
            sent = statements_logged(log, start)
            return [e.split(": ", 1)[1] for e in sent if ": " in e]

        await confirmation()  # kept statements are planned the second time they run
        await confirmation()
        sent = await confirmation()
    mine = [s for s in sent if "payment_intents" in s or s.startswith(("BEGIN", "COMMIT"))]
    assert [s[:28] for s in mine] == [
        "SELECT payment_intents.id, p",  # the read before the lease
        "WITH w0 AS (UPDATE payment_i",  # the lease and the first attempt
        "WITH w0 AS (UPDATE provider_",  # the answer, settled
    ], mine
    _, lease, settle = mine
    for table in ("provider_payments", "audit_events"):
        assert f"INSERT INTO {table}" in lease, table
    for table in ("provider_handles", "payment_intents", "audit_events", "outbox"):
        assert f"INSERT INTO {table}" in settle or f"UPDATE {table}" in settle, table
    assert "FOR UPDATE" not in " ".join(sent)


async def test_a_lease_held_elsewhere_refuses_the_confirmation_and_gives_the_key_back(
    runtime,
) -> None:
    """The lease goes with the first attempt; when another confirmation holds it,
    nothing of that statement is written (no attempt, no audit event), the request
    is refused as before, and its idempotency key is free again: the same request
    succeeds once the lease is back."""
    services = runtime.services
    me = await services.auth.principal_for(DEV_SECRET)
    intent = (await services.intents.create(me, CreateIntent(amount="250.00"))).intent
    assert intent is not None
    now = services.intents.clock.now()
    until = now + timedelta(seconds=30)
    async with services.db.transaction() as conn:  # another confirmation's lease
        assert await intent_rows.take_lease(conn, intent.id, intent.version, now, until)
    card = ConfirmIntent(
        intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"), idempotency_key="k-1"
    )
    with pytest.raises(InvalidState):
        await services.confirm.confirm(me, card)
    async with services.db.read() as conn:
        trail = (await audit.for_intents(conn, [intent.id]))[intent.id]
        attempts = await attempt_rows.pending_for(conn, intent.id)
    assert [e.type for e in trail] == ["intent.created"]
    assert attempts == []
    async with services.db.transaction() as conn:
        await intent_rows.release_lease(conn, intent.id, until)
    result = await services.confirm.confirm(me, card)
    assert result.intent is not None
    assert result.intent.status is PaymentIntentStatus.SUCCEEDED


async def test_a_webhook_that_moved_the_intent_first_is_found_when_settling(
    runtime, monkeypatch
) -> None:
    """A PSP event that names our intent (its metadata) settles it while the card call
    is in flight, so the version the unread save assumed has moved; on a warm
    PostgreSQL the save's outbox row may collide with that change's before the guard
    refuses, and that counts as moved too. The confirmation reads, locks and answers
    the intent as it is, records the attempt's answer, and leaves nothing pending."""
    services = runtime.services
    me, intent = await _warm_then_a_new_intent(services)
    # Our intent, named in the payment's metadata: applied at once.
    naming = lambda _: {"intent_hint": intent.id}  # noqa: E731
    _an_event_as_the_card_call_returns(services, monkeypatch, naming, "applied")
    card = ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    result = await services.confirm.confirm(me, card)
    assert result.intent is not None
    assert result.intent.status is PaymentIntentStatus.SUCCEEDED
    async with services.db.read() as conn:
        pending = await attempt_rows.pending_for(conn, intent.id)
        trail = (await audit.for_intents(conn, [intent.id]))[intent.id]
    assert pending == []
    assert [e.type for e in trail] == [
        "intent.created",
        "provider.request",
        "webhook.received",
        "intent.succeeded",
        "provider.response",
    ]
    assert await _handles_of(services, intent.id) == 1  # the PSP's name for it, kept


async def test_giving_a_key_back_spares_a_claim_made_since_by_another_request(runtime) -> None:
    """The refused lease's fallback gives back only the claim it made (`claimed_at`):
    on SQLite that claim went with the refused block, and a same-key request may have
    claimed the key meanwhile."""
    services = runtime.services
    keyed = idempotency.keyed("m_dev", "confirmPaymentIntent", "k-shared", lambda: {"x": 1})
    ours = services.intents.clock.now()
    theirs = ours + timedelta(milliseconds=3)
    async with services.db.transaction() as conn:
        assert await idempotency.begin(conn, keyed, theirs) is None  # the other request's
    async with services.db.transaction() as conn:
        await idempotency.release(conn, keyed, claimed_at=ours)
    async with services.db.transaction() as conn:
        with pytest.raises(IdempotencyInProgress):  # still theirs
            await idempotency.begin(conn, keyed, theirs + timedelta(milliseconds=1))
    async with services.db.transaction() as conn:
        await idempotency.release(conn, keyed, claimed_at=theirs)
    async with services.db.transaction() as conn:
        assert await idempotency.begin(conn, keyed, theirs) is None  # free again


async def test_a_change_that_holds_the_intent_while_the_settle_waits_ends_well_either_way(
    runtime, monkeypatch
) -> None:
    """Another writer (a webhook, say) holds the intent FOR UPDATE while the card call
    returns, then moves it. On PostgreSQL the settle's statement holds its outbox row
    for the next version and waits for the intent, while the other writer's outbox row
    waits for that one: a deadlock, which PostgreSQL ends by aborting one of them. If
    it is the settle's, the confirmation goes the locked way; if the other's, the
    settle goes through. On SQLite the other writer commits first and the unread save
    is refused. Either way the answer is the intent as stored, nothing is left pending
    and the PSP's answer is recorded."""
    services = runtime.services
    me, intent = await _warm_then_a_new_intent(services)
    stripe = services.confirm.router.providers["stripe"]
    real_send = stripe.send_payment
    holding = asyncio.Event()
    holders: list[asyncio.Future[None]] = []

    async def hold_then_cancel() -> None:
        now = services.intents.clock.now()
        async with services.db.transaction() as conn:
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            holding.set()
            await asyncio.sleep(0.3)  # the settle is sent meanwhile, and waits
            after = current.moved_to(PaymentIntentStatus.CANCELED, now)
            await record_change(conn, current, after, [status_event(after)], now, locked=True)

    async def send_then_hold(request, wire):
        payment = await real_send(request, wire)
        holders.append(asyncio.ensure_future(hold_then_cancel()))
        await holding.wait()
        return payment

    monkeypatch.setattr(stripe, "send_payment", send_then_hold)
    card = ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    result = await services.confirm.confirm(me, card)
    (held,) = await asyncio.gather(*holders, return_exceptions=True)
    async with services.db.read() as conn:
        stored = await intent_rows.get(conn, intent.id)
        pending = await attempt_rows.pending_for(conn, intent.id)
        trail = (await audit.for_intents(conn, [intent.id]))[intent.id]
    assert stored is not None and result.intent is not None
    assert result.intent.status is stored.status
    assert pending == []
    assert "provider.response" in [e.type for e in trail]
    if stored.status is PaymentIntentStatus.CANCELED:
        assert held is None  # the other writer went first
    else:
        assert stored.status is PaymentIntentStatus.SUCCEEDED
        assert isinstance(held, Exception)  # the other writer was the one aborted
