"""The intent a PSP's event is about, found and locked in one statement
(`intents.get_locked_by_handle`): by a handle recorded for the payment, else by the
intent id the PSP echoed back. Both databases; on PostgreSQL, one round trip."""

from __future__ import annotations

import asyncio

import pytest

from app.db.repositories import handles
from app.db.repositories import intents as intent_rows
from app.services.intents import CreateIntent
from providers.base import ProviderEvent, ProviderStatus
from tests.support.postgres import statements_logged
from tests.support.statement_log import logged_services


async def _two_intents(runtime) -> tuple[str, str]:
    services = runtime.services
    me = await services.auth.principal_for("sk_test_dev")
    first = (await services.intents.create(me, CreateIntent(amount="10.00"))).intent
    second = (await services.intents.create(me, CreateIntent(amount="20.00"))).intent
    async with services.db.transaction() as conn:
        await handles.remember(conn, "stripe", ["pi_psp_1", "ch_psp_1"], first.id, "att_1")
    return first.id, second.id


async def test_an_event_finds_its_intent_by_handle_else_by_the_id_echoed_back(runtime) -> None:
    first, second = await _two_intents(runtime)

    async def found(provider: str, names: list[str], hint: str | None) -> str | None:
        async with runtime.services.db.transaction() as conn:
            intent = await intent_rows.get_locked_by_handle(conn, provider, names, hint)
        return intent.id if intent else None

    assert await found("stripe", ["pi_psp_1"], None) == first
    assert await found("stripe", ["", "ch_psp_1"], None) == first  # a charge's name
    # The handle we recorded wins over an id the PSP echoed back.
    assert await found("stripe", ["pi_psp_1"], second) == first
    assert await found("stripe", ["pi_unknown"], second) == second  # no handle yet
    assert await found("stripe", [], second) == second
    assert await found("conekta", ["pi_psp_1"], None) is None  # another PSP's name
    assert await found("stripe", ["pi_unknown"], None) is None
    assert await found("stripe", ["pi_unknown"], "pi_nobody") is None


async def test_the_intent_found_stays_locked_until_the_transaction_ends(runtime) -> None:
    if runtime.services.db.is_sqlite:
        pytest.skip("SQLite's one writer runs one transaction at a time: nothing to lock")
    await _two_intents(runtime)
    db = runtime.services.db
    locked, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.transaction() as conn:
            assert await intent_rows.get_locked_by_handle(conn, "stripe", ["pi_psp_1"], None)
            locked.set()
            await release.wait()

    async def second_reader() -> None:
        async with db.transaction() as conn:
            await intent_rows.get_locked_by_handle(conn, "stripe", ["ch_psp_1"], None)

    holding = asyncio.create_task(holder())
    await locked.wait()
    waiting = asyncio.create_task(second_reader())
    await asyncio.sleep(0.3)
    assert not waiting.done(), "the second read should wait for the first transaction"
    release.set()
    await asyncio.wait_for(asyncio.gather(holding, waiting), 5)


async def test_on_postgresql_an_event_reads_its_intent_in_one_statement(
    databases, database_url, request
) -> None:
    """PostgreSQL's own log of a warm PSP event: the handle is looked up inside the
    locked read of the intent, not in a statement before it."""
    async with logged_services(request, databases, database_url) as (services, me, log):

        async def event(n: int) -> list[str]:
            intent = (await services.intents.create(me, CreateIntent(amount="250.00"))).intent
            assert intent is not None
            async with services.db.transaction() as conn:
                await handles.remember(conn, "stripe", [f"pi_psp_{n}"], intent.id, f"att_{n}")
            start = log.stat().st_size
            succeeded = ProviderEvent(
                "stripe", f"evt_{n}", "payment_intent.succeeded", ProviderStatus.SUCCEEDED,
                provider_ref=f"pi_psp_{n}",
            )  # fmt: skip
            (received,) = await services.provider_events.receive([succeeded], b"{}")
            assert received.outcome in ("applied", "ignored")
            return statements_logged(log, start)

        await event(1)  # kept statements are planned the second time they run
        await event(2)
        sent = await event(3)
    bodies = [entry.split(": ", 1)[1] for entry in sent if ": " in entry]
    reads = [
        s for s in bodies if s.startswith("SELECT") and ("payment_int" in s or "provider_h" in s)
    ]
    assert len(reads) == 1, reads
    assert "provider_handles" in reads[0] and "FOR UPDATE" in reads[0], reads[0]
