"""Sandbox cards: the test card numbers of contract section 7, tokens minted from them
per PSP (`POST /sandbox/tokens`, as Stripe.js or Conekta.js would mint them), and how
each card behaves at whichever emulator it is charged.

A minted token lives in its PSP's part of the sandbox store, so the other PSP's
emulator does not know it and refuses it with its own error, as the live APIs do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from app.domain.ids import random_token
from providers.sandbox.store import Tx


class Outcome(enum.StrEnum):
    SUCCEEDS = "succeeds"
    DECLINED = "declined"
    THREE_D_SECURE = "three_d_secure"  # the issuer asks for the challenge


@dataclass(frozen=True, slots=True)
class SandboxCard:
    brand: str
    last4: str
    outcome: Outcome
    installments: bool  # the issuer offers meses sin intereses on it


# Contract section 7's test card numbers.
TEST_CARDS = {
    "4242424242424242": SandboxCard("visa", "4242", Outcome.SUCCEEDS, installments=True),
    "5555555555554444": SandboxCard("mastercard", "4444", Outcome.SUCCEEDS, installments=True),
    "4000000000000002": SandboxCard("visa", "0002", Outcome.DECLINED, installments=True),
    "4000000000003220": SandboxCard("visa", "3220", Outcome.THREE_D_SECURE, installments=True),
    "4000000000000127": SandboxCard("visa", "0127", Outcome.SUCCEEDS, installments=False),
}
# The named tokens of contract section 5 and the cards they stand for.
VISA = TEST_CARDS["4242424242424242"]
MASTERCARD = TEST_CARDS["5555555555554444"]
DECLINED = TEST_CARDS["4000000000000002"]
THREE_D_SECURE = TEST_CARDS["4000000000003220"]
TOKEN_KIND = "token"


async def minted_card(tx: Tx, token: str) -> SandboxCard | None:
    """The card behind a token this PSP minted, or None if it never did."""
    body = await tx.get(TOKEN_KIND, token)
    return TEST_CARDS.get(str(body.get("number"))) if body else None


def mint(tx: Tx, prefix: str, number: str, exp_month: int, exp_year: int) -> dict[str, Any]:
    """Stage a new token for a test card; its answer as the PSP's browser library
    gives it (the number itself never leaves the store)."""
    card = TEST_CARDS[number]
    token = f"{prefix}{random_token(24)}"
    tx.put(TOKEN_KIND, token, {"number": number, "exp_month": exp_month, "exp_year": exp_year})
    return {
        "token": token,
        "provider": tx.provider,
        "card": {
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": exp_month,
            "exp_year": exp_year,
        },
    }


def card_problem(body: dict[str, Any], year: int) -> str | None:
    """Why a tokenize request cannot be a sandbox card, or None."""
    number = body.get("number")
    if not isinstance(number, str) or number not in TEST_CARDS:
        return f"number must be one of the sandbox test cards: {', '.join(TEST_CARDS)}"
    month, exp_year, cvc = body.get("expMonth"), body.get("expYear"), body.get("cvc")
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        return "expMonth must be 1 to 12"
    if isinstance(exp_year, bool) or not isinstance(exp_year, int) or not year <= exp_year:
        return f"expYear must be {year} or later"
    if not isinstance(cvc, str) or not cvc.isdigit() or len(cvc) not in (3, 4):
        return "cvc must be 3 or 4 digits"
    return None
