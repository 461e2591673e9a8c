"""The worker's payout jobs on a real database and the STP emulator, with no server
to hear STP's callbacks (they are lost): reconciliation asks STP by tracking key."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.domain.payouts import PayoutStatus
from app.services.auth import Principal
from app.services.payouts import CreatePayout
from tests.support.payouts import RETURNED_CLABE, SUPPLIER_CLABE


async def merchant(runtime) -> Principal:
    return await runtime.services.auth.principal_for("sk_test_dev")


def command(clabe: str) -> CreatePayout:
    return CreatePayout("750.00", clabe, "Ana Lopez", "Honorarios noviembre")


async def test_reconciliation_finds_what_a_lost_callback_would_have_said(runtime):
    payouts = runtime.services.payouts
    me = await merchant(runtime)
    paid = (await payouts.create(me, command(SUPPLIER_CLABE))).payout
    returned = (await payouts.create(me, command(RETURNED_CLABE))).payout
    assert paid.status is returned.status is PayoutStatus.IN_TRANSIT
    await asyncio.sleep(0.5)  # STP settles both; its callbacks go nowhere
    assert (await payouts.get(me, paid.id)).status is PayoutStatus.IN_TRANSIT
    assert await payouts.sender.reconcile(timedelta(0)) == 2
    now_paid = await payouts.get(me, paid.id)
    now_returned = await payouts.get(me, returned.id)
    assert (now_paid.status, now_paid.version) == (PayoutStatus.PAID, 3)
    assert now_paid.paid_at is not None and payouts.proof_url(now_paid)
    assert now_returned.status is PayoutStatus.RETURNED
    assert now_returned.return_reason.code == "01"
    events = await payouts.events([paid.id])
    assert [e.type for e in events[paid.id]][-2:] == ["reconciliation.payout", "payout.paid"]
    assert await payouts.sender.reconcile(timedelta(0)) == 0


async def test_nothing_to_resend_when_every_payout_was_answered(runtime):
    payouts = runtime.services.payouts
    await payouts.create(await merchant(runtime), command(SUPPLIER_CLABE))
    assert await payouts.sender.resend() == 0
