"""The Bitso adapter against the Bitso emulator: over real HTTP to the session server, and
in-process where a test needs the webhooks the emulator sends or a clock it can move.
Webhook signatures and parsing: test_bitso_webhooks.py."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import httpx
import pytest
from starlette.applications import Starlette

from app.clock import Clock
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import CryptoInstructions
from providers.base import (
    INVALID_REQUEST,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderStatus,
    RefundRequest,
)
from providers.bitso import BitsoProvider, from_millis
from providers.bitso_wire import BitsoAuth, sign_request
from providers.sandbox.app import adapter_options
from providers.sandbox.bitso import (
    QUOTE_LIFETIME,
    BitsoEmulator,
)
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from tests.support.sandbox import receive

NOW = int(time.time())


def crypto(
    asset: str = "USDC", network: str = "polygon", amount: int = 50_000, intent_id: str = "pi_c"
) -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(amount, Currency.MXN),
        method=PaymentMethodType.CRYPTO,
        crypto_asset=asset,
        crypto_network=network,
    )


def bitso_config(config: ProviderConfig) -> ProviderConfig:
    """The sandbox's webhook public key, as the composition root hands it to the adapter."""
    return replace(config, options=adapter_options("bitso"))


@pytest.fixture
async def bitso(provider_config) -> AsyncIterator[BitsoProvider]:
    adapter = BitsoProvider(bitso_config(provider_config("bitso")))
    yield adapter
    await adapter.aclose()


def instructions_of(payment) -> CryptoInstructions:
    assert isinstance(payment.next_action, CryptoInstructions)
    return payment.next_action


# -- the quote and the address -----------------------------------------------------------------


async def test_quote_gives_exact_decimal_strings_and_an_address(bitso):
    payment = await bitso.create_payment(crypto(), "bitso-shape-1")
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    shown = instructions_of(payment)
    assert (shown.asset, shown.network) == ("USDC", "polygon")
    assert shown.crypto_amount == "29.411765"  # 500.00 / 17.00, rounded up to 6 decimals
    assert shown.rate == "17.00"
    assert Decimal(shown.crypto_amount) * Decimal(shown.rate) >= Decimal("500.00")
    assert re.fullmatch(r"0x[0-9a-f]{40}", shown.address)
    assert payment.lookup_keys == (shown.address,)
    assert payment.provider_ref == payment.raw["quote"]["id"]


async def test_bitcoin_amount_rounds_up_to_eight_decimals(bitso):
    shown = instructions_of(await bitso.create_payment(crypto("BTC", "bitcoin"), "bitso-btc-1"))
    assert shown.crypto_amount == "0.00029412"
    assert Decimal(shown.crypto_amount) * Decimal(shown.rate) >= Decimal("500.00")
    assert re.fullmatch(r"bc1q[02-9ac-hj-np-z]{38}", shown.address)


async def test_quote_holds_for_fifteen_minutes(bitso):
    payment = await bitso.create_payment(crypto(), "bitso-expiry-1")
    expires_at = instructions_of(payment).quote_expires_at
    assert expires_at - from_millis(payment.raw["quote"]["created"]) == timedelta(minutes=15)
    assert expires_at > datetime.now(UTC) + timedelta(minutes=14)


@pytest.mark.parametrize(
    ("asset", "network", "shape"),
    [
        ("USDC", "polygon", r"0x[0-9a-f]{40}"),
        ("USDT", "ethereum", r"0x[0-9a-f]{40}"),
        ("USDC", "solana", r"[1-9A-HJ-NP-Za-km-z]{44}"),
        ("USDT", "tron", r"T[1-9A-HJ-NP-Za-km-z]{33}"),
    ],
)
async def test_every_payment_gets_an_address_of_its_own(bitso, asset, network, shape):
    first = await bitso.create_payment(crypto(asset, network), f"bitso-own-{network}-1")
    second = await bitso.create_payment(crypto(asset, network), f"bitso-own-{network}-2")
    addresses = {instructions_of(first).address, instructions_of(second).address}
    assert len(addresses) == 2
    assert all(re.fullmatch(shape, address) for address in addresses)


# -- authentication ----------------------------------------------------------------------------


def fresh_nonce() -> str:
    """A "Nonce v2": Unix ms and a random salt, so no adapter in the session has used it."""
    return str(time.time_ns() // 1_000_000 * 1_000_000 + secrets.randbelow(1_000_000))


def test_nonces_grow_with_every_call_and_have_bitsos_v2_shape():
    auth = BitsoAuth("k", "s")
    nonces = [auth.next_nonce() for _ in range(1_000)]
    assert all(later > earlier for earlier, later in itertools.pairwise(nonces))
    assert all(len(str(n)) == 19 for n in nonces)


async def test_a_request_signed_as_bitso_documents_is_accepted(sandbox):
    path = "/sandbox/bitso/api/v3/fundings?limit=1"
    nonce = fresh_nonce()
    header = f"Bitso sandbox:{nonce}:{sign_request('sandbox', nonce, 'GET', path, b'')}"
    response = await sandbox.get(
        "/bitso/api/v3/fundings?limit=1", headers={"Authorization": header}
    )
    assert response.status_code == 200
    assert response.json()["success"] is True


async def test_a_replayed_nonce_is_refused(sandbox):
    path = "/sandbox/bitso/api/v3/fundings?limit=1"
    nonce = fresh_nonce()
    header = f"Bitso sandbox:{nonce}:{sign_request('sandbox', nonce, 'GET', path, b'')}"
    first = await sandbox.get("/bitso/api/v3/fundings?limit=1", headers={"Authorization": header})
    again = await sandbox.get("/bitso/api/v3/fundings?limit=1", headers={"Authorization": header})
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "0207"


# -- refusals ----------------------------------------------------------------------------------


# An unsupported asset (DOGE): tests/providers/test_contract.py.
@pytest.mark.parametrize(("asset", "network"), [("USDC", "tron")])
async def test_an_unsupported_asset_or_network_is_refused_on_its_merits(bitso, asset, network):
    with pytest.raises(ProviderError) as caught:
        await bitso.create_payment(crypto(asset, network), f"bitso-unsupported-{asset}-{network}")
    assert caught.value.code == INVALID_REQUEST
    assert not caught.value.retryable
    assert "0313" in caught.value.message


async def test_an_unknown_quote_is_quote_expired(bitso):
    with pytest.raises(ProviderError) as caught:
        await bitso.fetch_payment("no-such-quote")
    assert caught.value.code == "QUOTE_EXPIRED"
    assert not caught.value.retryable


async def test_cancel_needs_no_call_and_refunds_go_by_spei():
    # A host that does not exist: any call would fail.
    unreachable = ProviderConfig(base_url="http://bitso.invalid", api_key="k", api_secret="s")
    verifier = BitsoProvider(unreachable)
    canceled = await verifier.cancel_payment("any-quote", "bitso-cancel-1")
    assert canceled.status is ProviderStatus.CANCELED
    with pytest.raises(ProviderError) as caught:
        await verifier.refund(RefundRequest("re_1", "pi_c", Money(100, Currency.MXN)), "k")
    assert (caught.value.code, caught.value.retryable) == (INVALID_REQUEST, False)
    assert "SPEI" in caught.value.message


# -- deposits ----------------------------------------------------------------------------------


async def test_a_short_deposit_credits_its_share_and_the_rest_completes_it(bitso, sandbox):
    payment = await bitso.create_payment(crypto(), "bitso-short-1")
    address = instructions_of(payment).address
    await sandbox.post("/crypto/deposits", json={"address": address, "amount": "14.705882"})
    short = await bitso.fetch_payment(payment.provider_ref)
    share = Decimal("500.00") * Decimal("14.705882") / Decimal("29.411765")
    assert short.status is ProviderStatus.SUCCEEDED
    assert short.amount_received == int(share.quantize(Decimal("0.01"), ROUND_DOWN) * 100)
    assert short.amount_received == 24_999
    await sandbox.post("/crypto/deposits", json={"address": address, "amount": "14.705883"})
    assert (await bitso.fetch_payment(payment.provider_ref)).amount_received == 50_000


# -- in-process: the webhooks the emulator sends, and a clock we can move ------------------------


class Captured:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"received": []})


@pytest.fixture
async def emulated():
    """(adapter, emulator, captured webhooks, clock) on an emulator of our own."""
    clock, captured = Clock(), Captured()
    webhooks = httpx.AsyncClient(transport=httpx.MockTransport(captured), base_url="http://cobro")
    state = SandboxState(clock=clock, public_url="http://cobro", webhook_client=webhooks)
    emulator = BitsoEmulator(state, EmulatorConfig("sandbox", "sandbox", "sandbox"))
    transport = httpx.ASGITransport(app=Starlette(routes=emulator.routes()))
    config = ProviderConfig(base_url="http://bitso.test", api_key="sandbox", api_secret="sandbox")
    adapter = BitsoProvider(bitso_config(config), transport=transport)
    yield adapter, emulator, captured, clock
    await adapter.aclose()
    await webhooks.aclose()


async def test_fetch_names_each_deposit_as_its_complete_webhook_does(emulated):
    adapter, emulator, captured, _ = emulated
    payment = await adapter.create_payment(crypto(), "bitso-deposits-1")
    address = instructions_of(payment).address
    await receive(emulator, f"address:{address}", "14.705882")  # short: half the pesos
    await receive(emulator, f"address:{address}", "14.705883")  # the rest
    events = [adapter.parse_webhook(r.headers, r.content, NOW)[0] for r in captured.requests]
    complete = [(e.event_id, e.amount) for e in events if e.status is ProviderStatus.SUCCEEDED]
    fetched = await adapter.fetch_payment(payment.provider_ref)
    # Webhook and reconciliation name each deposit alike, so the core counts it once.
    assert sorted((d.event_id, d.amount) for d in fetched.deposits) == sorted(complete)
    assert [amount for _, amount in sorted(complete, key=lambda c: c[1])] == [24_999, 25_001]
    assert fetched.amount_received == 50_000
    assert all(e.intent_hint is None for e in events)  # Bitso echoes nothing of ours


async def test_the_webhooks_sent_for_a_deposit_parse_to_pending_then_succeeded(emulated):
    adapter, emulator, captured, _ = emulated
    payment = await adapter.create_payment(crypto(), "bitso-webhooks-1")
    shown = instructions_of(payment)
    await receive(emulator, f"address:{shown.address}", shown.crypto_amount)
    events = [adapter.parse_webhook(r.headers, r.content, NOW)[0] for r in captured.requests]
    assert [e.status for e in events] == [ProviderStatus.PROCESSING, ProviderStatus.SUCCEEDED]
    assert [e.amount for e in events] == [None, 50_000]
    assert len({e.event_id for e in events}) == 2
    assert {(e.provider_ref, e.lookup_key) for e in events} == {
        (payment.provider_ref, shown.address)
    }


async def test_an_unpaid_quote_expires_and_a_late_deposit_is_still_credited(emulated):
    adapter, emulator, captured, clock = emulated
    payment = await adapter.create_payment(crypto(), "bitso-late-1")
    shown = instructions_of(payment)
    clock.advance(QUOTE_LIFETIME.total_seconds() + 1)
    assert (await adapter.fetch_payment(payment.provider_ref)).status is ProviderStatus.EXPIRED
    await receive(emulator, f"address:{shown.address}", shown.crypto_amount)
    late = adapter.parse_webhook(captured.requests[-1].headers, captured.requests[-1].content, NOW)
    assert (late[0].status, late[0].amount) == (ProviderStatus.SUCCEEDED, 50_000)
    assert late[0].raw["payload"]["details"]["conversion"]["quote_expired"] is True
