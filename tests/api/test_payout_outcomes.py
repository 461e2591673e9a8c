"""What happens to a payout after it is sent, as the sandbox plays it (contract section 8):
paid a moment after, returned by the receiving bank (cause 01), refused by STP
(insufficient funds), returned by hand after it was paid, the CEP once paid, an STP
that is down (Conekta sends it) and one that is silent: nothing lost, nothing sent
twice, and a transfer STP may have taken never goes to Conekta."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from providers.sandbox.conekta_wire import sign_webhook
from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient
from tests.support.payouts import (
    CANCEL_PAYOUT,
    REFUSED_CLABE,
    RETURNED_CLABE,
    create_payout,
    read_payout,
    wait_for_status,
)


async def _fault(http: httpx.AsyncClient, mode: str, provider: str = "stp") -> None:
    answer = await http.post(f"/sandbox/providers/{provider}/faults", json={"mode": mode})
    assert answer.status_code == 200


async def test_a_paid_payout_has_its_cep_with_banxicos_lookup_fields(api, http):
    payout = (await create_payout(api, amount="2500.50", concept="Pago proveedor"))["payout"]
    assert payout["proofUrl"] is None
    paid = await wait_for_status(api, payout["id"], "PAID")
    url = httpx.URL(paid["proofUrl"])
    assert url.path == "/sandbox/cep"
    params = dict(url.params)
    assert params["criterio"] == paid["trackingKey"]
    assert (params["emisor"], params["receptor"]) == ("90646", "40002")
    assert (params["cuenta"], params["monto"]) == (paid["clabe"], "2500.50")
    cep = await http.get(url.raw_path.decode())
    assert cep.status_code == 200
    assert cep.headers["content-type"].startswith("application/xml")
    assert f'claveRastreo="{paid["trackingKey"]}"' in cep.text
    assert 'MontoPago="2500.50"' in cep.text
    assert 'Concepto="Pago proveedor"' in cep.text
    wrong = await http.get("/sandbox/cep", params={**params, "monto": "2500.51"})
    assert wrong.status_code == 404


async def test_the_returning_bank_sends_it_back_with_its_reason(api):
    payout = (await create_payout(api, clabe=RETURNED_CLABE))["payout"]
    assert payout["status"] == "IN_TRANSIT"
    returned = await wait_for_status(api, payout["id"], "RETURNED")
    assert returned["returnReason"] == {"code": "01", "message": "account does not exist"}
    assert returned["proofUrl"] is None  # never paid: Banxico has no CEP for it
    assert "payout.paid" not in [e["type"] for e in returned["events"]]


async def test_stp_refuses_the_transfer_and_nothing_else_is_tried(api):
    refused = (await create_payout(api, clabe=REFUSED_CLABE))["payout"]
    assert (refused["status"], refused["provider"], refused["trackingKey"]) == (
        "FAILED",
        "stp",
        None,
    )
    requests = [e for e in refused["events"] if e["type"] == "provider.request"]
    assert [e["provider"] for e in requests] == ["stp"]


async def test_a_paid_payout_returned_later_becomes_returned(api, http):
    payout = (await create_payout(api))["payout"]
    paid = await wait_for_status(api, payout["id"], "PAID")
    back = await http.post(
        f"/sandbox/spei/payouts/{paid['trackingKey']}/return", json={"reason": "03"}
    )
    assert back.status_code == 200, back.text
    returned = await wait_for_status(api, payout["id"], "RETURNED")
    assert returned["returnReason"] == {"code": "03", "message": "account canceled"}
    assert returned["version"] == paid["version"] + 1
    again = await http.post(f"/sandbox/spei/payouts/{paid['trackingKey']}/return", json={})
    assert again.status_code == 409


async def test_with_stp_down_the_payout_goes_out_through_conekta(api, http):
    await _fault(http, "down")
    try:
        payout = (await create_payout(api, amount="730.00"))["payout"]
        assert (payout["status"], payout["provider"]) == ("IN_TRANSIT", "conekta")
        paid = await wait_for_status(api, payout["id"], "PAID")
    finally:
        await _fault(http, "ok")
    assert paid["status"] == "PAID"
    steps = [
        (e["type"], e["provider"])
        for e in paid["events"]
        if e["type"] in ("provider.request", "provider.unsent")
    ]
    assert steps == [
        ("provider.request", "stp"),
        ("provider.unsent", "stp"),
        ("provider.request", "conekta"),
    ]
    # Conekta's payout.paid event moved it: verified, and in the trail.
    heard = [e for e in paid["events"] if e["type"] == "webhook.payout"]
    assert [(e["provider"], e["data"]["state"]) for e in heard] == [("conekta", "paid")]
    assert paid["trackingKey"] == payout_key(paid)


async def test_conekta_returns_what_the_receiving_bank_sends_back(api, http):
    await _fault(http, "down")
    try:
        payout = (await create_payout(api, clabe=RETURNED_CLABE))["payout"]
        returned = await wait_for_status(api, payout["id"], "RETURNED")
    finally:
        await _fault(http, "ok")
    assert (returned["provider"], returned["returnReason"]) == (
        "conekta",
        {"code": "01", "message": "account does not exist"},
    )


async def test_with_every_psp_down_the_payout_waits_pending_and_can_be_canceled(api, http):
    await _fault(http, "down")
    await _fault(http, "down", "conekta")
    try:
        payout = (await create_payout(api))["payout"]
    finally:
        await _fault(http, "ok")
        await _fault(http, "ok", "conekta")
    assert (payout["status"], payout["provider"], payout["trackingKey"]) == ("PENDING", None, None)
    assert [(e["type"], e["provider"]) for e in payout["events"]][-5:] == [
        ("provider.request", "stp"),
        ("provider.unsent", "stp"),
        ("provider.request", "conekta"),
        ("provider.unsent", "conekta"),
        ("payout.unsent", None),
    ]
    canceled = (await api.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
    assert canceled["errors"] == []
    assert (canceled["payout"]["status"], canceled["payout"]["version"]) == ("CANCELED", 2)
    twice = (await api.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
    assert twice["errors"][0]["code"] == "PAYOUT_NOT_CANCELABLE"


@pytest.mark.slow
async def test_an_unanswered_payout_is_resent_to_the_same_psp_with_the_same_key(database_url):
    """STP takes the order but its answer never comes (slow): the payout stays PENDING,
    cannot be canceled (it may have left), and the worker sends the same bytes again;
    STP refuses the tracking key as used, the order it took is found by it, and the
    payout goes on from there: one order at STP, none anywhere else."""
    thread = start_server(database_url, provider_timeout_seconds=1.0, unanswered_seconds=1.0)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            await _fault(http, "slow")
            try:
                payout = (await create_payout(api))["payout"]
                assert (payout["status"], payout["trackingKey"]) == ("PENDING", None)
                assert payout["events"][-1]["type"] == "provider.unknown"
                stuck = (await api.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
                assert stuck["errors"][0]["code"] == "PAYOUT_NOT_CANCELABLE"
            finally:
                await _fault(http, "ok")
            paid = await wait_for_status(api, payout["id"], "PAID", seconds=30)
            assert paid["status"] == "PAID"
            requests = [e for e in paid["events"] if e["type"] == "provider.request"]
            assert [e["provider"] for e in requests] == ["stp"]
            await asyncio.sleep(0.5)
            final = await read_payout(api, payout["id"])
            assert final["trackingKey"] == payout_key(final)
    finally:
        thread.stop()


def payout_key(payout: dict) -> str:
    """The tracking key the payout's first request carried, from its audit trail."""
    first = next(e for e in payout["events"] if e["type"] == "provider.request")
    key: str = first["data"]["tracking_key"]
    return key


async def test_conekta_payout_events_are_verified_and_deduplicated(api, http):
    """A Conekta event about a payout moves it once: a replay is a duplicate, a forged
    one (bad Digest) is refused and changes nothing."""
    await _fault(http, "down")
    try:
        payout = (await create_payout(api, amount="41.00"))["payout"]
    finally:
        await _fault(http, "ok")
    paid = await wait_for_status(api, payout["id"], "PAID")
    heard = next(e for e in paid["events"] if e["type"] == "webhook.payout")
    ref = heard["data"]["provider_ref"]
    assert ref.startswith("payout_")
    obj = {"id": ref, "object": "payout", "status": "returned", "return_reason": {"code": "02"}}
    event = {"id": "evt_payout_returned_1", "object": "event", "type": "payout.returned"}
    body = json.dumps({**event, "created_at": 1, "data": {"object": obj}}).encode()
    headers = {"content-type": "application/json"}
    forged = await http.post(
        "/webhooks/conekta", content=body, headers={**headers, "Digest": "bm90IGEgc2lnbmF0dXJl"}
    )
    assert forged.status_code in (400, 401), forged.text
    assert (await read_payout(api, payout["id"]))["status"] == "PAID"
    signed = {**headers, **sign_webhook(body, 0)}
    first = await http.post("/webhooks/conekta", content=body, headers=signed)
    again = await http.post("/webhooks/conekta", content=body, headers=signed)
    assert [r["outcome"] for r in first.json()["received"]] == ["applied"]
    assert [r["outcome"] for r in again.json()["received"]] == ["duplicate"]
    returned = await read_payout(api, payout["id"])
    assert returned["status"] == "RETURNED"
    assert returned["returnReason"] == {"code": "02", "message": "account blocked"}
    assert returned["version"] == paid["version"] + 1
