"""The adapters' in-process way to the sandbox (providers/sandbox/transport.py): each
request answered as the mounted sandbox app answers it over ASGI, whether an
emulator route takes it (its status, headers and body; a signed path checked as
the app sees it) or not (404, 405, from the app itself). The contract suite runs
every adapter through it as well (tests/providers/contract.py)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.clock import Clock
from providers.bitso_wire import sign_request
from providers.sandbox.app import EMULATORS, Sandbox
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from providers.sandbox.transport import InProcess

KEY = "sandbox"
BASE = "http://sandbox.test"


@pytest.fixture
def sandbox() -> Sandbox:
    state = SandboxState(clock=Clock(), public_url="http://cobro.test")
    return Sandbox(state, {name: EmulatorConfig(KEY, KEY, KEY) for name in EMULATORS})


async def both(sandbox: Sandbox, method: str, path: str, **kwargs: object) -> list[httpx.Response]:
    """The same request through the mounted app over ASGI, then through InProcess."""
    answers = []
    for transport in (
        httpx.ASGITransport(app=sandbox.app, raise_app_exceptions=False),
        InProcess(sandbox.app, sandbox.mounts),
    ):
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            answers.append(await client.request(method, path, **kwargs))  # type: ignore[arg-type]
    return answers


def same(answers: list[httpx.Response]) -> httpx.Response:
    over_asgi, in_process = answers
    assert in_process.status_code == over_asgi.status_code
    assert in_process.content == over_asgi.content
    assert in_process.headers.get("content-type") == over_asgi.headers.get("content-type")
    return in_process


STRIPE_AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/stripe/v1/payment_intents/pi_nobody", STRIPE_AUTH, 404),  # the emulator's
        ("POST", "/stripe/v1/payment_intents", {}, 401),  # the emulator's: no key
        ("GET", "/stripe/v1/nowhere", STRIPE_AUTH, 404),  # no route: the app's
        ("DELETE", "/stripe/v1/payment_intents", STRIPE_AUTH, 405),  # wrong method: the app's
    ],
)
async def test_answers_as_the_mounted_app(
    sandbox: Sandbox, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    assert same(await both(sandbox, method, path, headers=headers)).status_code == status


async def test_a_query_string_reaches_the_emulator(sandbox: Sandbox) -> None:
    answer = same(
        await both(
            sandbox,
            "GET",
            "/stripe/v1/payment_intents/search",
            headers=STRIPE_AUTH,
            params={"query": "metadata['cobro_intent_id']:'pi_nobody'"},
        )
    )
    assert answer.status_code == 200
    assert answer.json()["data"] == []


async def test_a_signed_path_is_checked_as_the_mounted_app_sees_it(sandbox: Sandbox) -> None:
    """Bitso signs the request's path: the emulator must see the path the adapter
    signed, on either way in (each call its own, later nonce)."""
    path = "/bitso/api/v4/currency_conversions/nothing"
    answers = []
    for transport in (
        httpx.ASGITransport(app=sandbox.app, raise_app_exceptions=False),
        InProcess(sandbox.app, sandbox.mounts),
    ):
        nonce = str(time.time_ns() // 1_000_000)
        signature = sign_request(KEY, nonce, "GET", path, b"")
        headers = {"Authorization": f"Bitso {KEY}:{nonce}:{signature}"}
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            answers.append(await client.get(path, headers=headers))
        await asyncio.sleep(0.002)  # the next nonce is a later millisecond
    answer = same(answers)
    assert answer.status_code == 404, answer.text  # signature and nonce taken
