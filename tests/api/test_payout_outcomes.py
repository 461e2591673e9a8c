"""What happens to a payout after it is sent, as the sandbox plays it (contract section 8):
paid a moment after, returned by the receiving bank (cause 01), refused by STP
(insufficient funds), returned by hand after it was paid, the CEP once paid, and an
STP that is down or silent: nothing lost, nothing sent twice, nothing to a second PSP."""

from __future__ import annotations

import asyncio

import httpx

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


async def _fault(http: httpx.AsyncClient, mode: str) -> None:
    answer = await http.post("/sandbox/providers/stp/faults", json={"mode": mode})
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


async def test_with_stp_down_the_payout_waits_pending_and_can_be_canceled(api, http):
    await _fault(http, "down")
    try:
        payout = (await create_payout(api))["payout"]
    finally:
        await _fault(http, "ok")
    assert (payout["status"], payout["provider"], payout["trackingKey"]) == ("PENDING", None, None)
    assert [e["type"] for e in payout["events"]][-3:] == [
        "provider.request",
        "provider.unsent",
        "payout.unsent",
    ]
    canceled = (await api.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
    assert canceled["errors"] == []
    assert (canceled["payout"]["status"], canceled["payout"]["version"]) == ("CANCELED", 2)
    twice = (await api.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
    assert twice["errors"][0]["code"] == "PAYOUT_NOT_CANCELABLE"


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
