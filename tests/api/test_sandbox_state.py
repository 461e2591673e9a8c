"""The sandbox behaves like a PSP: what it issued outlives a restart of the server, and a
PSP that answers too late has still done the work (contract section 5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from app.main import create_app
from tests.conftest import DEV_SECRET, make_settings, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent
from tests.support.server import ServerThread, free_port


async def fault(http: httpx.AsyncClient, provider: str, mode: str) -> None:
    response = await http.post(f"/sandbox/providers/{provider}/faults", json={"mode": mode})
    assert response.status_code == 200


async def waiting(api: GraphQLClient, method: str, amount: str, **inputs: object) -> dict:
    intent = await create_intent(api, amount)
    payload = await confirm(api, intent["id"], method, **inputs)
    assert payload["paymentIntent"]["status"] == "REQUIRES_ACTION", payload
    return payload["paymentIntent"]


async def test_what_the_psps_issued_before_a_restart_can_be_paid_after_it(database_url):
    before = start_server(database_url)
    try:
        async with httpx.AsyncClient(base_url=before.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            stripe_oxxo = await waiting(api, "OXXO", "300.00", oxxo={})
            await fault(http, "stripe", "down")  # the next voucher comes from Conekta
            conekta_oxxo = await waiting(api, "OXXO", "400.00", oxxo={})
            await fault(http, "stripe", "ok")
            spei = await waiting(api, "SPEI", "500.00", spei={})
            crypto = await waiting(api, "CRYPTO", "600.00", crypto={})
    finally:
        before.stop()
    assert [stripe_oxxo["provider"], conekta_oxxo["provider"]] == ["stripe", "conekta"]
    assert [spei["provider"], crypto["provider"]] == ["stp", "bitso"]

    after = start_server(database_url)  # the same database, a new process's sandbox
    try:
        async with httpx.AsyncClient(base_url=after.url, timeout=30) as http:
            paid = [
                await http.post(f"/sandbox/oxxo/{stripe_oxxo['nextAction']['reference']}/pay"),
                await http.post(f"/sandbox/oxxo/{conekta_oxxo['nextAction']['reference']}/pay"),
                await http.post(
                    "/sandbox/spei/deposits",
                    json={"clabe": spei["nextAction"]["clabe"], "amount": "500.00"},
                ),
                await http.post(
                    "/sandbox/crypto/deposits",
                    json={
                        "address": crypto["nextAction"]["address"],
                        "amount": crypto["nextAction"]["cryptoAmount"],
                    },
                ),
            ]
            assert [p.status_code for p in paid] == [200] * 4, [p.text for p in paid]
            assert [p.json()["webhook_status"] for p in paid] == [200] * 4
            api = GraphQLClient(http, DEV_SECRET)
            for intent, amount in [
                (stripe_oxxo, "300.00"),
                (conekta_oxxo, "400.00"),
                (spei, "500.00"),
                (crypto, "600.00"),
            ]:
                now = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
                assert (now["status"], now["amountReceived"]["amount"]) == ("SUCCEEDED", amount)
            # A voucher is paid once, whichever process is asked again.
            again = await http.post(f"/sandbox/oxxo/{stripe_oxxo['nextAction']['reference']}/pay")
            assert again.status_code == 404
    finally:
        after.stop()


def in_process_server(database_url: str, **overrides: object) -> ServerThread:
    """A server that reaches its sandbox in-process (what `make run` does): a caller's
    timeout cancels the very task the emulator runs in."""
    port = free_port()
    settings = make_settings(database_url, public_url=f"http://127.0.0.1:{port}", **overrides)
    thread = ServerThread(create_app(settings), port).start()
    thread.settings = settings
    return thread


@pytest.fixture(params=["in_process", "over_http"])
def impatient(request, database_url) -> Iterator[ServerThread]:
    """A server whose PSP calls give up after a second (the slow sandbox answers in 10)."""
    build = in_process_server if request.param == "in_process" else start_server
    thread = build(database_url, provider_timeout_seconds=1.0)
    yield thread
    thread.stop()


async def test_a_slow_psp_charges_although_the_caller_gave_up_and_the_replay_finds_it(
    impatient,
):
    async with httpx.AsyncClient(base_url=impatient.url, timeout=30) as http:
        api = GraphQLClient(http, DEV_SECRET)
        await fault(http, "stripe", "slow")
        intent = await create_intent(api, "300.00")
        unknown = await confirm(api, intent["id"], card={"token": "tok_visa"})
        assert unknown["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"  # Cobro gave up
        # Time moves on before anyone asks Stripe again: a charge made now would say so.
        moved = await http.post("/sandbox/clock/advance", json={"seconds": 600})
        later = datetime.fromisoformat(moved.json()["now"]).timestamp()
        await fault(http, "stripe", "ok")

        # Cobro's replay (same key, same request) learns of the charge...
        replayed = (await confirm(api, intent["id"], card={"token": "tok_visa"}))["paymentIntent"]
        assert (replayed["status"], replayed["provider"]) == ("SUCCEEDED", "stripe")
        events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
        [charge_id] = [
            e["data"]["provider_ref"] for e in events if e["type"] == "provider.response"
        ]

        # ... which the PSP made when first asked, before the caller gave up on it.
        charge = await http.get(
            f"/sandbox/stripe/v1/payment_intents/{charge_id}",
            headers={"Authorization": "Bearer sandbox"},
        )
        assert charge.status_code == 200
        assert charge.json()["status"] == "succeeded"
        assert charge.json()["created"] < later - 500
