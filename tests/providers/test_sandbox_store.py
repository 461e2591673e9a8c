"""Two processes' sandboxes on one database are one PSP: an idempotency key answered
by one is replayed by the other, and their writes to one object never get lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.clock import Clock
from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.money import Currency, Money
from app.services.sandbox_store import DatabaseSandboxStore
from providers.base import ProviderConfig, ProviderError, RefundRequest
from providers.sandbox.app import Sandbox
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from providers.sandbox.store import Answer, Faulty, MemoryStore, ObjectWrite, Writes, encode
from providers.stripe import StripeProvider
from tests.providers.test_stripe import card

EMULATOR = EmulatorConfig("sk_sbx", "", "whsec_sbx")


@pytest.fixture
async def two_processes(database_url) -> AsyncIterator[list[tuple[StripeProvider, Sandbox]]]:
    """(Stripe adapter, sandbox) twice, each sandbox on a Database of its own (on
    SQLite both share one: two writers in one event loop would wait on each other's
    lock, which two processes do not; each emulator still has its own memory)."""
    made: list[tuple[StripeProvider, Sandbox]] = []
    databases: list[Database] = []
    for _ in range(2):
        if not databases or not databases[0].is_sqlite:
            databases.append(Database(database_url))
            await upgrade(databases[-1])
        db = databases[-1]
        state = SandboxState(Clock(), "http://cobro.test", store=DatabaseSandboxStore(db))
        sandbox = Sandbox(state, {"stripe": EMULATOR})
        config = ProviderConfig("http://sandbox.test/stripe", "sk_sbx", webhook_secrets=("w",))
        transport = httpx.ASGITransport(app=sandbox.app)
        made.append((StripeProvider(config, transport=transport), sandbox))
    yield made
    for adapter, _ in made:
        await adapter.aclose()
    for db in databases:
        await db.dispose()


async def test_a_key_answered_by_one_process_is_replayed_by_the_other(two_processes):
    (a, sandbox), (b, _) = two_processes
    first = await a.create_payment(card("tok_visa", "pi_sbx_1"), "key-shared")
    again = await b.create_payment(card("tok_visa", "pi_sbx_1"), "key-shared")
    assert again.provider_ref == first.provider_ref
    found = await sandbox.state.store.find("stripe", "payment_intent", "pi_sbx_1")
    assert len(found) == 1  # one charge
    with pytest.raises(ProviderError) as caught:  # the same key, another amount
        await b.create_payment(card("tok_visa", "pi_sbx_1", amount=60_000), "key-shared")
    assert not caught.value.retryable


async def test_the_same_key_at_once_through_both_processes_charges_once(two_processes):
    (a, sandbox), (b, _) = two_processes
    request = card("tok_visa", "pi_sbx_2")
    answers = await asyncio.gather(
        *(adapter.create_payment(request, "key-raced") for adapter in (a, b, a, b)),
        return_exceptions=True,
    )
    refs = {p.provider_ref for p in answers if not isinstance(p, BaseException)}
    assert len(refs) == 1  # whoever answered, answered the one charge
    assert len(await sandbox.state.store.find("stripe", "payment_intent", "pi_sbx_2")) == 1


async def test_refunds_racing_through_both_processes_never_refund_too_much(two_processes):
    (a, sandbox), (b, _) = two_processes
    paid = await a.create_payment(card("tok_visa", "pi_sbx_3", amount=10_000), "key-paid")
    outcomes = await asyncio.gather(
        *(
            adapter.refund(
                RefundRequest(f"re_{i}", "pi_sbx_3", Money(6_000, Currency.MXN), paid.provider_ref),
                f"key-refund-{i}",
            )
            for i, adapter in enumerate((a, b))
        ),
        return_exceptions=True,
    )
    refunded = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(refunded) == 1  # 6,000 twice would be more than the 10,000 paid
    stored = await sandbox.state.store.find("stripe", "refund", paid.provider_ref)
    assert [doc.body["amount"] for _, doc in stored] == [6_000]


@pytest.mark.parametrize("store_of", ["database", "memory"])
async def test_writes_only_while_healthy_are_refused_whole_in_a_fault_mode(
    database_url, store_of
) -> None:
    """A call learns its PSP is healthy in the statement that writes
    (`Writes.only_if_healthy`): in any fault mode all of it is refused (Faulty) and
    nothing is written, the idempotency answer included; with the mode `ok` again,
    or without the guard, it is written."""
    db = Database(database_url)
    await upgrade(db)
    store = DatabaseSandboxStore(db) if store_of == "database" else MemoryStore()

    def writes(key: str, *, guarded: bool = True) -> Writes:
        staged = Writes("stripe", only_if_healthy=guarded)
        staged.objects[("payment_intent", key)] = ObjectWrite(
            "payment_intent", key, "pi_ref", encode({"id": key}), None
        )
        staged.answer = (f"idem-{key}", Answer("f", 200, b"{}"))
        return staged

    try:
        await store.commit(writes("pi_1"))  # no fault was ever set: healthy
        for mode in ("down", "slow", "flaky"):
            await store.set_fault("stripe", mode)
            with pytest.raises(Faulty):
                await store.commit(writes(f"pi_{mode}"))
            assert await store.get("stripe", "payment_intent", f"pi_{mode}") is None
            assert await store.answer("stripe", f"idem-pi_{mode}") is None
        await store.commit(writes("pi_unguarded", guarded=False))  # the fault's own runs
        await store.set_fault("stripe", "ok")
        await store.commit(writes("pi_down"))
        for key in ("pi_1", "pi_unguarded", "pi_down"):
            assert await store.get("stripe", "payment_intent", key) is not None
    finally:
        await db.dispose()
