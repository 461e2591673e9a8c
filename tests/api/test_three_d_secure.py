"""3-D Secure policy (contract section 7): REQUIRED asks each PSP for the challenge
in its own terms; AUTOMATIC leaves it to the PSP. Over HTTP through the emulators."""

from __future__ import annotations

import pytest

from tests.support.cards import THREE_D_SECURE, mint
from tests.support.graphql import GET, confirm, create_intent


@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_required_asks_for_the_challenge_and_completing_it_pays(api, http, server, provider):
    intent = await create_intent(api)
    card = {
        "tokens": [{"provider": provider, "token": await mint(http, provider)}],
        "threeDSecure": "REQUIRED",
    }
    waiting = (await confirm(api, intent["id"], card=card))["paymentIntent"]
    assert (waiting["status"], waiting["provider"]) == ("REQUIRES_ACTION", provider)
    assert waiting["nextAction"]["__typename"] == "RedirectToUrl"
    assert waiting["nextAction"]["url"] == f"{server.url}/sandbox/3ds/{intent['id']}"
    completed = await http.post(f"/sandbox/3ds/{intent['id']}/complete")
    assert completed.json()["webhook_status"] == 200
    paid = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert paid["status"] == "SUCCEEDED"


@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_automatic_lets_the_psp_decide(api, http, provider):
    plain = await create_intent(api)
    card = {"tokens": [{"provider": provider, "token": await mint(http, provider)}]}
    paid = await confirm(api, plain["id"], card={**card, "threeDSecure": "AUTOMATIC"})
    assert paid["paymentIntent"]["status"] == "SUCCEEDED"
    # The issuer of this card asks for the challenge whatever the policy.
    asking = await create_intent(api)
    token = await mint(http, provider, THREE_D_SECURE)
    waiting = await confirm(
        api, asking["id"], card={"tokens": [{"provider": provider, "token": token}]}
    )
    assert waiting["paymentIntent"]["status"] == "REQUIRES_ACTION"
