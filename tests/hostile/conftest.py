"""A server of the hostile tests' own, on a database no other test writes to, with no
background jobs: so any change the database shows was made by the request just sent.

Seeded once per backend with one payment waiting at each PSP, so that a malformed event
naming a real payment would move it if it got through."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.db.engine import Database
from tests.conftest import DEV_SECRET, Databases, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent
from tests.support.server import ServerThread

# What a change writes (app/services/changes.py: intent, audit, outbox together), what
# a webhook stores, and the refunds and handles a payment grows.
COUNTS = {
    "intents": "SELECT count(*) FROM payment_intents",
    "intent_versions": "SELECT coalesce(sum(version), 0) FROM payment_intents",
    "audit_events": "SELECT count(*) FROM audit_events",
    "outbox": "SELECT count(*) FROM outbox",
    "refunds": "SELECT count(*) FROM refunds",
    "handles": "SELECT count(*) FROM provider_handles",
    "inbox_kept": "SELECT count(*) FROM webhook_inbox WHERE outcome <> 'rejected'",
    "inbox_rejected": "SELECT count(*) FROM webhook_inbox WHERE outcome = 'rejected'",
}

SNAPSHOT = text("SELECT " + ", ".join(f"({sql})" for sql in COUNTS.values()))


class StateProbe:
    """Reads COUNTS from the server's database on an event loop of its own (the
    property-based tests are synchronous: Hypothesis drives them)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.database = self._run(self._open(url))

    @staticmethod
    async def _open(url: str) -> Database:
        return Database(url)

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def snapshot(self) -> dict[str, int]:
        async def read() -> dict[str, int]:
            async with self.database.read() as conn:
                row = (await conn.execute(SNAPSHOT)).one()
            return {name: int(value) for name, value in zip(COUNTS, row, strict=True)}

        return self._run(read())

    def close(self) -> None:
        self._run(self.database.dispose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def unchanged(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    """What moved, other than rejected events kept in the inbox."""
    return {
        name: (before[name], after[name])
        for name in COUNTS
        if name != "inbox_rejected" and before[name] != after[name]
    }


@dataclass(frozen=True)
class Seeded:
    """One payment waiting at each PSP, and the names its webhooks would use."""

    stripe_intent: str
    stripe_ref: str
    spei_intent: str
    clabe: str
    crypto_intent: str
    crypto_address: str
    crypto_quote: str


@dataclass
class Hostile:
    server: ServerThread
    probe: StateProbe
    seeded: Seeded
    http: httpx.Client  # one keep-alive connection for all the examples


async def _seed(url: str) -> Seeded:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        api = GraphQLClient(http, DEV_SECRET)
        card = await create_intent(api)
        await confirm(api, card["id"], card={"token": "tok_threeDSecureRequired"})
        spei = await create_intent(api)
        spei_action = (await confirm(api, spei["id"], "SPEI", spei={}))["paymentIntent"]
        crypto = await create_intent(api, "1000.00")
        crypto_action = (await confirm(api, crypto["id"], "CRYPTO", crypto={}))["paymentIntent"]
        refs = {}
        for intent in (card, crypto):
            events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
            refs[intent["id"]] = next(
                e["data"]["provider_ref"] for e in events if e["type"] == "provider.response"
            )
        return Seeded(
            stripe_intent=card["id"],
            stripe_ref=refs[card["id"]],
            spei_intent=spei["id"],
            clabe=spei_action["nextAction"]["clabe"],
            crypto_intent=crypto["id"],
            crypto_address=crypto_action["nextAction"]["address"],
            crypto_quote=refs[crypto["id"]],
        )


@pytest.fixture(scope="module")
def hostile(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    url = databases.new_url(tmp_path_factory.mktemp("hostile"))
    server = start_server(url, embedded_worker=False)
    probe = StateProbe(url)
    try:
        seeded = asyncio.run(_seed(server.url))
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Hostile(server, probe, seeded, http)
    finally:
        probe.close()
        server.stop()
