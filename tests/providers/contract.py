"""Every PSP adapter as the contract suite (test_contract.py) sees it: how to build it
against its emulator, a payment it serves, how the customer pays that payment, and
what it can do where PSPs genuinely differ. The model is strawberry's one HTTP suite
over every integration (tests/http/clients/): one description per PSP, the same tests
for all. Adding a PSP: its adapter, its emulator, one `Psp` here."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from starlette.applications import Starlette
from starlette.routing import Mount

from app.clock import Clock
from app.domain.expiry import oxxo_expires_at
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import CryptoInstructions, OxxoVoucher, SpeiInstructions
from providers.base import (
    CARD_TOKEN_INVALID,
    INVALID_REQUEST,
    PaymentRequest,
    Provider,
    ProviderConfig,
    ProviderPayment,
)
from providers.registry import build_provider
from providers.sandbox.app import adapter_options
from providers.sandbox.bitso import BitsoEmulator
from providers.sandbox.common import Emulator, EmulatorConfig
from providers.sandbox.conekta import ConektaEmulator
from providers.sandbox.state import SandboxState
from providers.sandbox.stp import StpEmulator
from providers.sandbox.stripe import StripeEmulator
from providers.sandbox.transport import InProcess as InProcessTransport
from tests.support.sandbox import receive, settle

# The sandbox's credentials for every emulator (app/config.py SANDBOX_CREDENTIAL).
SANDBOX = "sandbox"


def new_key() -> str:
    """A fresh idempotency key: the session's server outlives any one test."""
    return f"key-{uuid.uuid4()}"


def new_intent_id() -> str:
    return f"pi_{uuid.uuid4().hex}"


def _other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@dataclass(frozen=True)
class Psp:
    """One adapter and its emulator, and what the contract expects of them."""

    name: str
    emulator: type[Emulator]
    # A payment the PSP serves that waits for the customer (3-D Secure, voucher,
    # transfer, deposit): (intent id, attempt id) -> request.
    pending: Callable[[str, str | None], PaymentRequest]
    # The customer pays `payment` on an emulator: its amount in minor units arrives.
    pay: Callable[[Emulator, PaymentRequest, ProviderPayment], Any]
    # A request the PSP refuses on its merits, a word its refusal says, and the code
    # Cobro reads it as (a card token the PSP does not know: CARD_TOKEN_INVALID).
    refused: Callable[[], PaymentRequest] | None
    refusal_says: str = ""
    refused_code: str = INVALID_REQUEST
    # Credentials the PSP does not accept (wrong key, secret or signing key).
    miswired: Callable[[ProviderConfig], ProviderConfig] = lambda c: replace(c, api_key="wrong")
    # Whether the PSP tells "this key was used with other parameters", and in what words.
    key_reuse_says: str | None = None
    # Whether the PSP keeps our intent id (metadata): it can be searched by it, and its
    # webhooks name it.
    keeps_our_ids: bool = False
    # Whether money may move when a payment is created (a card is charged at once): an
    # answer Cobro cannot read must then be an unknown outcome, never a refusal.
    charges_on_create: bool = False
    # HTTP calls one payment takes (Bitso: the quote, then its deposit address).
    calls_per_payment: int = 1
    options: Mapping[str, str] = field(default_factory=dict)

    def config(self, base_url: str, *, timeout: float = 2.0) -> ProviderConfig:
        return ProviderConfig(
            base_url=base_url,
            api_key=SANDBOX,
            api_secret=SANDBOX,
            webhook_secrets=(SANDBOX,),
            timeout_seconds=timeout,
            connect_timeout_seconds=1.0,
            options={**adapter_options(self.name), **self.options},
        )

    def adapter(
        self, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> Provider:
        return build_provider(self.name, config, transport)

    def in_process(self, webhook_client: httpx.AsyncClient | None = None) -> InProcess:
        """This PSP's emulator on a store of its own, served in-process to its adapter,
        so a test can play the customer and read back the webhooks it sent."""
        state = SandboxState(clock=Clock(), public_url="http://cobro.test")
        if webhook_client is not None:
            state.webhook_client = webhook_client
        emulator = self.emulator(state, EmulatorConfig(SANDBOX, SANDBOX, SANDBOX))
        # As the app serves its adapters: the in-process transport, straight to routes.
        mount = Mount(f"/{self.name}", routes=emulator.routes())
        app = Starlette(routes=[mount])
        adapter = self.adapter(
            self.config(f"http://sandbox.test/{self.name}"), InProcessTransport(app, [mount])
        )
        return InProcess(self, emulator, adapter)


@dataclass
class InProcess:
    psp: Psp
    emulator: Emulator
    adapter: Provider


# -- the four PSPs -------------------------------------------------------------------------


def _card(token: str, intent_id: str, attempt_id: str | None = None) -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(50_000, Currency.MXN),
        method=PaymentMethodType.CARD,
        card_token=token,
        return_url=f"https://shop.example/return/{intent_id}",
        attempt_id=attempt_id,
    )


def _oxxo(intent_id: str, attempt_id: str | None = None) -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(20_000, Currency.MXN),
        method=PaymentMethodType.OXXO,
        customer_name="Ana",
        customer_email="ana@example.test",
        expires_in_days=3,
        expires_at=oxxo_expires_at(datetime.now(UTC), 3),
        attempt_id=attempt_id,
    )


def _spei(intent_id: str, attempt_id: str | None = None) -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(50_000, Currency.MXN),
        method=PaymentMethodType.SPEI,
        expires_at=datetime.now(UTC) + timedelta(hours=72),
        reference_number=secrets.randbelow(10**7 - 1) + 1,
        attempt_id=attempt_id,
    )


def _crypto(intent_id: str, attempt_id: str | None = None, asset: str = "USDC") -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(50_000, Currency.MXN),
        method=PaymentMethodType.CRYPTO,
        crypto_asset=asset,
        crypto_network="polygon",
        attempt_id=attempt_id,
    )


async def _pass_3ds(emulator: Emulator, request: PaymentRequest, _: ProviderPayment) -> None:
    await settle(emulator, f"3ds:{request.intent_id}")


async def _pay_voucher(emulator: Emulator, _: PaymentRequest, payment: ProviderPayment) -> None:
    assert isinstance(payment.next_action, OxxoVoucher)
    await settle(emulator, f"oxxo:{payment.next_action.reference}")


async def _transfer(emulator: Emulator, request: PaymentRequest, payment: ProviderPayment) -> None:
    assert isinstance(payment.next_action, SpeiInstructions)
    await receive(emulator, f"clabe:{payment.next_action.clabe}", request.amount.minor)


async def _deposit(emulator: Emulator, _: PaymentRequest, payment: ProviderPayment) -> None:
    assert isinstance(payment.next_action, CryptoInstructions)
    shown = payment.next_action
    await receive(emulator, f"address:{shown.address}", shown.crypto_amount)


STRIPE = Psp(
    name="stripe",
    emulator=StripeEmulator,
    pending=lambda intent, attempt: _card("tok_threeDSecureRequired", intent, attempt),
    pay=_pass_3ds,
    refused=lambda: _card("tok_nonsense", new_intent_id()),
    refusal_says="No such token",
    refused_code=CARD_TOKEN_INVALID,
    key_reuse_says="HTTP 400 idempotency_error",
    keeps_our_ids=True,
    charges_on_create=True,
)
CONEKTA = Psp(
    name="conekta",
    emulator=ConektaEmulator,
    pending=_oxxo,
    pay=_pay_voucher,
    refused=lambda: _card("tok_nonsense", new_intent_id()),
    refusal_says="token",
    refused_code=CARD_TOKEN_INVALID,
    key_reuse_says="idempotency_key",
    keeps_our_ids=True,
    charges_on_create=True,
)
STP = Psp(
    name="stp",
    emulator=StpEmulator,
    pending=_spei,
    pay=_transfer,
    refused=None,  # registering a CLABE of our own prefix is never refused on its merits
    # STP takes no API key: its calls are signed with the company's private key.
    miswired=lambda c: replace(c, options={**c.options, "private_key": _other_private_key()}),
)
BITSO = Psp(
    name="bitso",
    emulator=BitsoEmulator,
    pending=_crypto,
    pay=_deposit,
    refused=lambda: _crypto(new_intent_id(), asset="DOGE"),
    refusal_says="0313",
    miswired=lambda c: replace(c, api_secret="not-the-secret"),
    key_reuse_says="other parameters",
    calls_per_payment=2,
)
PSPS = (STRIPE, CONEKTA, STP, BITSO)
