"""The worker's jobs on a real database: relay adoption, resync, reconciliation."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy import select, update

from app import shutdown
from app.db.repositories import outbox
from app.db.tables import Outbox
from app.domain.methods import PaymentMethodType
from app.events.messages import intent_channel
from app.services.auth import Principal
from app.services.intents import CreateIntent
from app.services.payment_requests import ConfirmIntent, SpeiOptions
from app.services.reconcile import as_events
from providers.base import Deposit, ProviderPayment, ProviderStatus


async def merchant(runtime) -> Principal:
    return await runtime.services.auth.principal_for("sk_test_dev")


async def test_the_relay_adopts_rows_a_dead_process_left_unpublished(runtime):
    services = runtime.services
    intent = (await services.intents.create(await merchant(runtime), CreateIntent("100.00"))).intent
    runtime.relay._backlog.clear()  # the writer "died" before publishing its row
    T = Outbox.__table__
    async with services.db.transaction() as conn:  # ...and its lease ran out
        await conn.execute(
            update(T).values(lease_until=services.clock.now() - timedelta(seconds=1))
        )
    subscription = await runtime.broker.subscribe([intent_channel(intent.id)])
    assert await runtime.relay.publish_orphans() == 1
    change = await asyncio.wait_for(subscription.next(), 2)
    assert (change.intent.id, change.version) == (intent.id, 1)
    async with services.db.read() as conn:
        published = (await conn.execute(select(T.c.published_at))).scalars().all()
    assert all(published)
    assert await runtime.relay.publish_orphans() == 0


async def test_a_subscriber_that_missed_a_change_catches_up_from_the_outbox(runtime):
    services = runtime.services
    me = await merchant(runtime)
    intent = (await services.intents.create(me, CreateIntent("100.00"))).intent
    stream = services.live.intent_updates(me, intent.id, None)
    assert (await anext(stream)).version == 1
    # A change is committed but never reaches the broker (say, Redis was restarting).
    await services.intents.cancel(me, intent.id)
    runtime.relay._backlog.clear()
    runtime.broker.fanout.resync_all()
    caught_up = await asyncio.wait_for(anext(stream), 2)
    assert (caught_up.version, caught_up.status.value) == (2, "CANCELED")
    await stream.aclose()


async def test_a_deposit_learnt_by_webhook_and_by_reconciliation_counts_once(runtime):
    services = runtime.services
    me = await merchant(runtime)
    intent = (await services.intents.create(me, CreateIntent("500.00"))).intent
    waiting = (
        await services.confirm.confirm(
            me, ConfirmIntent(intent.id, PaymentMethodType.SPEI, spei=SpeiOptions())
        )
    ).intent
    clabe = waiting.next_action.clabe
    # The PSP's webhook for a 300.00 deposit arrives...
    deposit = ProviderPayment(
        provider_ref=clabe,
        status=ProviderStatus.REQUIRES_ACTION,
        amount_received=30_000,
        deposits=(Deposit("abono:20261127:40012:TRACK1", 30_000),),
    )
    events = as_events(waiting, clabe, deposit)
    await services.provider_events.receive(events, b"{}")
    # ...and reconciliation learns of the same deposit from the PSP later.
    await services.provider_events.receive(as_events(waiting, clabe, deposit), b"{}")
    after = await services.intents.get(me, intent.id)
    assert (after.status.value, after.amount_received.minor) == ("REQUIRES_ACTION", 30_000)


async def test_a_subscriber_reads_the_outbox_only_for_versions_it_missed(runtime, monkeypatch):
    """Each change comes with the intent as it is; the outbox is read only for versions
    a change skipped (on PostgreSQL a read is a round trip on every push)."""
    services = runtime.services
    me = await merchant(runtime)
    intent = (await services.intents.create(me, CreateIntent("500.00"))).intent
    reads: list[tuple[int, int | None]] = []
    real = outbox.versions_between

    async def counted(conn, subject_id, after, up_to):
        reads.append((after, up_to))
        return await real(conn, subject_id, after, up_to)

    monkeypatch.setattr(outbox, "versions_between", counted)
    stream = services.live.intent_updates(me, intent.id, None)
    assert (await anext(stream)).version == 1
    spei = ConfirmIntent(intent.id, PaymentMethodType.SPEI, spei=SpeiOptions())
    waiting = (await services.confirm.confirm(me, spei)).intent
    await runtime.relay.publish_backlog()  # the relay's work (no relay runs here)
    assert (await asyncio.wait_for(anext(stream), 2)).version == 2
    assert reads == []

    def deposited(total: int, *tracks: str) -> list:
        deposits = tuple(
            Deposit(f"abono:20261127:4001{n}:{t}", 25_000) for n, t in enumerate(tracks)
        )
        clabe = waiting.next_action.clabe
        payment = ProviderPayment(
            provider_ref=clabe,
            status=ProviderStatus.REQUIRES_ACTION if total < 50_000 else ProviderStatus.SUCCEEDED,
            amount_received=total,
            deposits=deposits,
        )
        return as_events(waiting, clabe, payment)

    # Version 3 (half paid) never reaches the broker; version 4 (paid) does, and 3 is
    # read back from the outbox.
    await services.provider_events.receive(deposited(25_000, "T1"), b"{}")
    runtime.relay._backlog.clear()
    await services.provider_events.receive(deposited(50_000, "T1", "T2"), b"{}")
    await runtime.relay.publish_backlog()
    versions = [(await asyncio.wait_for(anext(stream), 2)).version for _ in range(2)]
    assert versions == [3, 4]
    assert reads == [(2, 3)]
    await stream.aclose()


async def test_shutdown_is_not_held_up_by_a_change_committed_as_it_begins(runtime):
    """Shutdown cancels the relay and waits for it. Python 3.11's asyncio.wait_for,
    woken and cancelled in the same turn of the loop, returned the wake-up and dropped
    the cancellation: the relay waited on, and the process hung after "Waiting for
    application shutdown" (seen once, in the SIGTERM test)."""
    async with asyncio.timeout(5):
        async with runtime.running(worker=False):
            await asyncio.sleep(0.2)  # the relay waits for its doorbell
            runtime.relay._wake.set()  # rung by a commit in the turn shutdown begins


async def test_shutdown_ends_though_a_loop_swallows_its_cancellation_and_a_closer_hangs(
    runtime, monkeypatch, caplog
):
    """The SIGTERM test hung once more after "Waiting for application shutdown", with
    the relay's wait_for gone: whatever loses a cancellation or hangs in a close, the
    process still stops (app/shutdown.py), and the log says where it waited."""
    monkeypatch.setattr(shutdown, "RECANCEL_SECONDS", 0.2)
    monkeypatch.setattr(shutdown, "CLOSE_SECONDS", 0.5)
    second_cancellation = asyncio.Event()

    async def swallows_one_cancellation() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        try:
            await asyncio.Event().wait()
        finally:
            second_cancellation.set()

    async def hangs() -> None:
        await asyncio.Event().wait()

    runtime.loops.append(swallows_one_cancellation)
    runtime.closers.insert(0, hangs)
    try:
        async with asyncio.timeout(5):
            async with runtime.running(worker=True):
                await asyncio.sleep(0.2)
    finally:
        runtime.closers.remove(hangs)

    assert second_cancellation.is_set()
    assert "swallows_one_cancellation kept running after it was cancelled" in caplog.text
    assert "hangs did not finish within" in caplog.text
