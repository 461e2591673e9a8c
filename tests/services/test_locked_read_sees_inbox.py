"""The read that locks the intent a confirmation settles also says whether the webhook
inbox holds an event for the payment's handles that came before they were known
(`intents.get_locked_seeing`): one statement where two were. Both databases."""

from __future__ import annotations

from app.db.repositories import inbox
from app.db.repositories import intents as intent_rows
from app.services.intents import CreateIntent


async def test_the_locked_read_says_whether_an_event_waits_for_these_handles(runtime) -> None:
    services = runtime.services
    me = await services.auth.principal_for("sk_test_dev")
    intent = (await services.intents.create(me, CreateIntent(amount="10.00"))).intent
    now = services.intents.clock.now()
    async with services.db.transaction() as conn:
        row_id = await inbox.store(
            conn,
            provider="stripe",
            event_id="evt_early",
            event_type="payment_intent.succeeded",
            handle="pi_psp_1",
            body="{}",
            event={},
            now=now,
        )
        assert row_id is not None
        await inbox.set_outcome(conn, row_id, "unmatched", None)

    async def seen(provider: str, handles: list[str]) -> tuple[str | None, bool]:
        async with services.db.transaction() as conn:
            found, waiting = await intent_rows.get_locked_seeing(conn, intent.id, provider, handles)
        return (found.id if found else None), waiting

    assert await seen("stripe", ["pi_psp_1"]) == (intent.id, True)
    assert await seen("stripe", ["ch_other", "pi_psp_1"]) == (intent.id, True)
    assert await seen("stripe", ["pi_psp_2"]) == (intent.id, False)
    assert await seen("conekta", ["pi_psp_1"]) == (intent.id, False)  # another PSP's name
    assert await seen("stripe", []) == (intent.id, False)
    async with services.db.transaction() as conn:
        missing = await intent_rows.get_locked_seeing(conn, "pi_nobody", "stripe", ["pi_psp_1"])
    assert missing == (None, False)
    async with services.db.transaction() as conn:  # applied now: nothing waits any more
        await inbox.set_outcome(conn, row_id, "applied", intent.id)
    assert await seen("stripe", ["pi_psp_1"]) == (intent.id, False)
