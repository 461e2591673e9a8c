"""Minting sandbox card tokens the way a checkout would (contract section 7)."""

from __future__ import annotations

import httpx

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINED = "4000000000000002"
THREE_D_SECURE = "4000000000003220"
NO_INSTALLMENTS = "4000000000000127"


async def mint(http: httpx.AsyncClient, provider: str, number: str = VISA) -> str:
    """A token for `number` from `provider`'s tokenizer in the sandbox."""
    response = await http.post(
        "/sandbox/tokens",
        json={
            "provider": provider,
            "number": number,
            "expMonth": 12,
            "expYear": 2030,
            "cvc": "123",
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def tokens(http: httpx.AsyncClient, number: str = VISA) -> list[dict[str, str]]:
    """The card tokenized at both card PSPs, as `card.tokens`."""
    return [{"provider": p, "token": await mint(http, p, number)} for p in ("stripe", "conekta")]
