"""STP callbacks: the abono (money in) and the order status (refunds), parsed by the
adapter; and the callbacks the emulator sends, read back in-process."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.routing import Mount

from app.clock import Clock
from providers.base import ProviderConfig, ProviderStatus, WebhookRejected
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from providers.sandbox.stp import StpEmulator
from providers.stp import StpProvider
from providers.stp_wire import sign_callback
from tests.providers.test_stp import CUSTOMER_CLABE, refund_request, spei
from tests.support.sandbox import receive

SECRET = "sandbox"


@pytest.fixture
def stp() -> StpProvider:
    """An adapter that only parses callbacks: nothing answers at its base URL."""
    config = ProviderConfig(
        "http://stp.invalid", "", webhook_secrets=(SECRET,), options=StpEmulator.ADAPTER_OPTIONS
    )
    return StpProvider(config)


ABONO = {
    "id": 3191365,
    "fechaOperacion": 20200127,
    "institucionOrdenante": 40012,
    "institucionBeneficiaria": 90646,
    "claveRastreo": "12345",
    "nombreOrdenante": "STP",
    "cuentaOrdenante": CUSTOMER_CLABE,
    "cuentaBeneficiario": "646180123400000421",
    "referenciaNumerica": 42,
    "tsLiquidacion": 1580152320000,
}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Stp-Signature": sign_callback(body, secret)}


def abono_body(monto: str) -> bytes:
    """An abono with `monto` written as is: a JSON number (1234.56) or string ("0.10")."""
    return json.dumps({**ABONO, "monto": "@"}).replace('"@"', monto).encode()


@pytest.mark.parametrize(
    ("monto", "centavos"),
    [
        ("1234.56", 123_456),
        ('"0.10"', 10),
        ("0.01", 1),
        ("500", 50_000),
        ("1.2E7", 1_200_000_000),  # Java writes doubles of 10^7 and more this way
    ],
)
def test_an_abono_becomes_a_payment_event_with_exact_centavos(stp, monto, centavos):
    body = abono_body(monto)
    [event] = stp.parse_webhook(signed(body), body, now=0)
    assert event.status is ProviderStatus.SUCCEEDED
    assert event.amount == centavos
    assert event.lookup_key == event.provider_ref == "646180123400000421"
    assert event.event_id == "abono:20200127:40012:12345"
    assert event.occurred_at == datetime(2020, 1, 27, 19, 12, tzinfo=UTC)
    assert event.intent_hint is None  # STP echoes nothing of ours back


def test_a_non_ascii_proof_is_rejected_by_the_adapter_not_an_error(stp):
    body = abono_body("1.00")
    for name in (b"x-stp-signature", b"x-webhook-token"):
        headers = Headers(raw=[(name, "fírma".encode())])  # Starlette: latin-1 str
        with pytest.raises(WebhookRejected):
            stp.parse_webhook(headers, body, now=0)


@pytest.mark.parametrize("monto", ["1.005", '"-5.00"', "0", '"abc"', "null"])
def test_an_abono_with_an_impossible_amount_is_rejected(stp, monto):
    body = abono_body(monto)
    with pytest.raises(WebhookRejected):
        stp.parse_webhook(signed(body), body, now=0)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"hello": "world"}', b'{"Estado": "LIQUIDACION"}', b""],
)
def test_malformed_callback_bodies_are_rejected(stp, body):
    with pytest.raises(WebhookRejected):
        stp.parse_webhook(signed(body), body, now=0)


@pytest.mark.parametrize(
    ("estado", "status"),
    [
        ("LIQUIDACION", ProviderStatus.SUCCEEDED),
        ("DEVOLUCION", ProviderStatus.FAILED),
        ("CANCELACION", ProviderStatus.FAILED),
        ("ALGO_NUEVO", ProviderStatus.PENDING),  # unknown is never success
    ],
)
def test_order_status_callbacks_map_to_the_refund(stp, estado, status):
    body = json.dumps({"id": 4321, "Estado": estado, "Detalle": ""}).encode()
    [event] = stp.parse_webhook(signed(body), body, now=0)
    assert event.refund_ref == "4321"
    assert event.status is status
    assert event.event_id == f"orden:4321:{estado}"  # settled, then returned: two events
    assert event.amount is None


# -- the emulator's callbacks verify with the adapter, end to end -------------------------


@dataclass
class Emulated:
    """STP's emulator in-process (its store in memory), its adapter over ASGI, and the
    callbacks it posted to a recording Cobro."""

    state: SandboxState
    emulator: StpEmulator
    adapter: StpProvider
    client: httpx.AsyncClient
    posted: list[httpx.Request]

    async def aclose(self) -> None:
        await self.adapter.aclose()
        await self.client.aclose()


def emulated(*, with_faults: bool = False) -> Emulated:
    """`with_faults`: its routes answer through the fault modes, as mounted in the app."""
    posted: list[httpx.Request] = []

    def cobro(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(cobro), base_url="http://cobro.test")
    state = SandboxState(clock=Clock(), public_url="http://cobro.test", webhook_client=client)
    emulator = StpEmulator(state, EmulatorConfig("unused", "unused", "whsec_stp"))
    routes = emulator.mounted_routes() if with_faults else emulator.routes()
    app = Starlette(routes=[Mount("/stp", routes=routes)])
    config = ProviderConfig(
        "http://sandbox.test/stp",
        "",
        webhook_secrets=("whsec_stp",),
        options=StpEmulator.ADAPTER_OPTIONS,
    )
    adapter = StpProvider(config, transport=httpx.ASGITransport(app))
    return Emulated(state, emulator, adapter, client, posted)


async def test_emulator_callbacks_for_deposits_and_refunds_verify_and_parse():
    stp = emulated()
    emulator, adapter, posted = stp.emulator, stp.adapter, stp.posted
    payment = await adapter.create_payment(spei(7), "emu-1")
    assert await receive(emulator, f"clabe:{payment.provider_ref}", 12_345) == 200
    assert await receive(emulator, f"clabe:{payment.provider_ref}", 655) == 200  # once more
    fetched = await adapter.fetch_payment(payment.provider_ref)
    refund = await adapter.refund(refund_request(), "emu-2")
    for _ in range(50):
        if len(posted) == 3:
            break
        await asyncio.sleep(0.05)
    await stp.aclose()
    first, second, orden = (adapter.parse_webhook(r.headers, r.content, 0)[0] for r in posted)
    assert posted[0].url.path == "/webhooks/stp"
    assert (first.lookup_key, first.amount, second.amount) == (payment.provider_ref, 12_345, 655)
    assert (orden.refund_ref, orden.status) == (refund.provider_ref, ProviderStatus.SUCCEEDED)
    # Reconciliation names each deposit exactly as its callback does: counted once.
    assert [(d.event_id, d.amount) for d in fetched.deposits] == [
        (first.event_id, 12_345),
        (second.event_id, 655),
    ]
    assert first.event_id != second.event_id
    assert fetched.amount_received == 13_000


async def test_an_order_accepted_while_healthy_settles_though_stp_goes_down_meanwhile():
    """The emulator settles a registered order 0.2 s later, in a task of its own: a
    fault mode set meanwhile refuses calls, not the settling of what was accepted
    (the call's fault check is its own task's, not its children's)."""
    stp = emulated(with_faults=True)
    try:
        await stp.adapter.refund(refund_request(), "key-settles-later")
        await stp.state.store.set_fault("stp", "down")
        for _ in range(100):
            if stp.posted:
                break
            await asyncio.sleep(0.02)
    finally:
        await stp.aclose()
    assert len(stp.posted) == 1  # the order's LIQUIDACION callback
