"""What every PSP adapter must do, one suite run over each against its emulator
(tests/providers/contract.py describes them). Over real HTTP to the session's server
where the sandbox's shared state or its fault modes matter; in-process where a test
plays the customer and reads back the webhook the emulator sent.

What stays in test_<psp>.py is what only that PSP does: its tokens and vectors, its
signature scheme's corners, its amounts, its refunds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from providers.base import (
    IDEMPOTENCY_MISMATCH,
    MalformedEvent,
    Provider,
    ProviderError,
    ProviderStatus,
    WebhookRejected,
    WireRequest,
)
from tests.providers.contract import PSPS, InProcess, Psp, new_intent_id, new_key
from tests.support.sandbox import last_webhook
from tests.support.server import ServerThread

NOW = int(time.time())


def over(where: Callable[[Psp], bool] = lambda _: True) -> pytest.MarkDecorator:
    """Run a test over every PSP `where` holds for."""
    chosen = [p for p in PSPS if where(p)]
    return pytest.mark.parametrize("psp", chosen, ids=[p.name for p in chosen])


@pytest.fixture
def base_url(server: ServerThread) -> Callable[[Psp], str]:
    return lambda psp: f"{server.url}/sandbox/{psp.name}"


@pytest.fixture
async def adapter(psp: Psp, base_url: Callable[[Psp], str]) -> AsyncIterator[Provider]:
    """The adapter over real HTTP to its emulator in the session's server."""
    built = psp.adapter(psp.config(base_url(psp)))
    yield built
    await built.aclose()


@pytest.fixture
async def emulated(psp: Psp) -> AsyncIterator[InProcess]:
    """The adapter and an emulator of its own, in-process."""
    pair = psp.in_process()
    yield pair
    await pair.adapter.aclose()


@pytest.fixture
async def fault(psp: Psp, server: ServerThread) -> AsyncIterator[Callable[[str], Any]]:
    """Put the PSP in a fault mode for this test (`ok` again afterwards)."""
    async with httpx.AsyncClient(base_url=f"{server.url}/sandbox", timeout=30) as sandbox:

        async def set_mode(mode: str) -> None:
            answer = await sandbox.post(f"/providers/{psp.name}/faults", json={"mode": mode})
            assert answer.status_code == 200

        yield set_mode
        await set_mode("ok")


class Recording(httpx.AsyncBaseTransport):
    """Real HTTP, and a copy of every request that went out."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- creating a payment --------------------------------------------------------------------


@over()
async def test_a_payment_is_created_waiting_for_the_customer(psp, adapter):
    # when
    payment = await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    # then
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    assert payment.provider_ref
    assert payment.next_action is not None
    assert (payment.error_code, payment.amount_received or 0) == (None, 0)


@over()
def test_the_prepared_request_is_pure_and_survives_storage(psp, adapter):
    request = psp.pending(new_intent_id(), "pp_attempt")
    # A stored request replays as it was built, whoever builds it again.
    wire = adapter.prepare_payment(request, "key-wire-1")
    assert adapter.prepare_payment(request, "key-wire-1") == wire
    assert WireRequest.from_dict(wire.to_dict()) == wire
    assert ("Idempotency-Key", "key-wire-1") in wire.headers
    assert adapter.prepare_payment(request, "key-wire-2") != wire


@over()
async def test_a_replay_sends_the_stored_bytes_and_gets_the_same_payment(psp, base_url):
    # given: a request prepared and stored, then sent twice (a crash between)
    recording = Recording()
    adapter = psp.adapter(psp.config(base_url(psp)), recording)
    request = psp.pending(new_intent_id(), "pp_replay")
    wire = adapter.prepare_payment(request, new_key())
    # when
    first = await adapter.send_payment(request, wire)
    again = await adapter.send_payment(request, wire)
    await adapter.aclose()
    # then: the same bytes both times, the same payment back
    creates = [r for r in recording.sent if r.url.path.endswith(wire.path)]
    assert [r.content for r in creates] == [wire.body, wire.body]
    for sent in creates:
        assert sent.method == wire.method
        assert all(sent.headers.get(name) == value for name, value in wire.headers)
    assert again.provider_ref == first.provider_ref
    assert again.next_action == first.next_action
    assert again.status is first.status


@over(lambda p: p.key_reuse_says is not None)
async def test_a_key_used_with_other_parameters_is_an_unknown_outcome(psp, adapter):
    key = new_key()
    request = psp.pending(new_intent_id(), None)
    await adapter.create_payment(request, key)
    other = replace(request, amount=replace(request.amount, minor=request.amount.minor + 100))
    with pytest.raises(ProviderError) as caught:
        await adapter.create_payment(other, key)
    # The PSP did something with that key once and does not say what: never "failed".
    assert caught.value.code == IDEMPOTENCY_MISMATCH
    assert caught.value.outcome_unknown and not caught.value.retryable
    assert psp.key_reuse_says in caught.value.message


# -- the PSP's errors, as Cobro's codes ----------------------------------------------------


@over(lambda p: p.refused is not None)
async def test_a_request_refused_on_its_merits_is_invalid_and_final(psp, adapter):
    assert psp.refused is not None
    with pytest.raises(ProviderError) as caught:
        await adapter.create_payment(psp.refused(), new_key())
    assert caught.value.code == psp.refused_code
    assert not caught.value.retryable and not caught.value.outcome_unknown
    assert psp.refusal_says in caught.value.message


@over()
async def test_credentials_the_psp_refuses_are_our_misconfiguration(psp, base_url):
    adapter = psp.adapter(psp.miswired(psp.config(base_url(psp))))
    with pytest.raises(ProviderError) as caught:
        await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    await adapter.aclose()
    assert caught.value.code == "PROVIDER_AUTH"
    assert not caught.value.retryable


@over()
async def test_a_psp_that_is_down_is_retryable_and_did_nothing(psp, adapter, fault):
    created = await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    intent_id, key = new_intent_id(), new_key()
    await fault("down")
    with pytest.raises(ProviderError) as caught:
        await adapter.create_payment(psp.pending(intent_id, None), key)
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "503" in caught.value.message
    with pytest.raises(ProviderError) as reading:  # a call that writes nothing, too
        await adapter.fetch_payment(created.provider_ref)
    assert "503" in reading.value.message
    await fault("ok")
    # It did nothing: no payment to find, and the key has no answer to replay.
    if psp.keeps_our_ids:
        assert await adapter.search_payments(intent_id) == []
    again = await adapter.create_payment(psp.pending(intent_id, None), key)
    assert again.status is ProviderStatus.REQUIRES_ACTION
    if psp.keeps_our_ids:
        found = await adapter.search_payments(intent_id)
        assert [p.provider_ref for p in found or []] == [again.provider_ref]


@over()
async def test_a_timeout_is_an_unknown_outcome_found_out_well_before_the_psp_answers(
    psp, base_url, fault
):
    adapter = psp.adapter(psp.config(base_url(psp), timeout=0.5))
    await fault("slow")
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    await adapter.aclose()
    # The PSP may have acted: the same request to the same PSP finds out, nothing else.
    assert caught.value.retryable and caught.value.outcome_unknown
    assert time.monotonic() - started < 2.0


@over()
async def test_a_flaky_psp_fails_every_other_call_retryably(psp, adapter, fault):
    # The emulator fails every other HTTP call (503): a payment made of one call
    # succeeds every other time, one made of two calls never does.
    await fault("flaky")
    outcomes = []
    for _ in range(4):
        try:
            await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
            outcomes.append("ok")
        except ProviderError as error:
            assert "503" in error.message and not error.outcome_unknown
            outcomes.append("retryable" if error.retryable else "final")
    if psp.calls_per_payment == 1:
        assert outcomes == ["retryable", "ok", "retryable", "ok"]
    else:
        assert outcomes == ["retryable"] * 4


UNREADABLE = [
    b"<html>502 Bad Gateway</html>",
    b"[]",
    b"{}",
    b'{"id": [5], "status": ["paid"], "payload": 7, "resultado": "x"}',
]


@over()
@pytest.mark.parametrize("body", UNREADABLE, ids=["html", "list", "empty", "wrong-types"])
async def test_an_answer_cobro_cannot_read_is_an_error_never_a_payment(psp, body):
    answers = httpx.MockTransport(lambda _: httpx.Response(200, content=body))
    adapter = psp.adapter(psp.config(f"http://{psp.name}.test"), answers)
    with pytest.raises(ProviderError) as caught:
        await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    await adapter.aclose()
    assert caught.value.retryable
    if psp.charges_on_create:
        # A card may have been charged: never send it elsewhere, find out instead.
        assert caught.value.outcome_unknown


# -- looking a payment up ------------------------------------------------------------------


@over()
async def test_fetch_tells_the_payment_as_created_then_as_paid(psp, emulated):
    # given
    adapter, request = emulated.adapter, psp.pending(new_intent_id(), None)
    created = await adapter.create_payment(request, new_key())
    # when / then
    waiting = await adapter.fetch_payment(created.provider_ref)
    assert (waiting.provider_ref, waiting.status) == (
        created.provider_ref,
        ProviderStatus.REQUIRES_ACTION,
    )
    assert set(waiting.lookup_keys) <= set(created.lookup_keys)
    await psp.pay(emulated.emulator, request, created)
    paid = await adapter.fetch_payment(created.provider_ref)
    assert paid.status is ProviderStatus.SUCCEEDED
    assert paid.amount_received == request.amount.minor


@over()
async def test_search_by_our_intent_id_finds_its_payments_where_the_psp_can(psp, adapter):
    intent_id = new_intent_id()
    mine = await adapter.create_payment(psp.pending(intent_id, "pp_one"), new_key())
    await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    found = await adapter.search_payments(intent_id)
    if not psp.keeps_our_ids:
        assert found is None  # the PSP keeps nothing of ours to search by
        return
    assert [(p.provider_ref, p.attempt_hint) for p in found or []] == [
        (mine.provider_ref, "pp_one")
    ]
    assert await adapter.search_payments(new_intent_id()) == []


@over()
async def test_a_pending_payment_can_be_canceled(psp, adapter):
    created = await adapter.create_payment(psp.pending(new_intent_id(), None), new_key())
    canceled = await adapter.cancel_payment(created.provider_ref, new_key())
    assert (canceled.provider_ref, canceled.status) == (
        created.provider_ref,
        ProviderStatus.CANCELED,
    )


# -- webhooks ------------------------------------------------------------------------------


async def paid_webhook(psp: Psp, emulated: InProcess) -> tuple[Any, Any, dict[str, str], bytes]:
    """(request, payment, signed headers, body) of the webhook sent when it was paid."""
    request = psp.pending(new_intent_id(), None)
    payment = await emulated.adapter.create_payment(request, new_key())
    await psp.pay(emulated.emulator, request, payment)
    headers, body = await last_webhook(emulated.emulator, NOW)
    return request, payment, headers, body


@over()
async def test_the_webhook_for_a_paid_payment_verifies_and_names_it(psp, emulated):
    # given
    request, payment, headers, body = await paid_webhook(psp, emulated)
    # when
    [event] = emulated.adapter.parse_webhook(headers, body, NOW)
    # then
    assert (event.provider, event.status) == (psp.name, ProviderStatus.SUCCEEDED)
    assert event.provider_ref == payment.provider_ref or event.lookup_key in payment.lookup_keys
    assert event.event_id
    assert event.amount == request.amount.minor
    assert event.intent_hint == (request.intent_id if psp.keeps_our_ids else None)
    # The same delivery again is the same event: the inbox's key makes it a no-op.
    [again] = emulated.adapter.parse_webhook(headers, body, NOW)
    assert again.to_dict() == event.to_dict()


@over()
async def test_a_webhook_changed_after_signing_is_rejected(psp, emulated):
    _, _, headers, body = await paid_webhook(psp, emulated)
    tampered = body.replace(b"0", b"1", 1)
    assert tampered != body
    with pytest.raises(WebhookRejected) as caught:
        emulated.adapter.parse_webhook(headers, tampered, NOW)
    assert not isinstance(caught.value, MalformedEvent)  # nothing proves the PSP sent it


@over()
async def test_a_webhook_without_its_signature_is_rejected(psp, emulated):
    _, _, _, body = await paid_webhook(psp, emulated)
    with pytest.raises(WebhookRejected) as caught:
        emulated.adapter.parse_webhook({}, body, NOW)
    assert not isinstance(caught.value, MalformedEvent)


@over()
async def test_an_adapter_given_no_webhook_secret_accepts_no_webhook(psp, emulated):
    _, _, headers, body = await paid_webhook(psp, emulated)
    config = psp.config("http://nowhere.invalid")
    bare_options = {k: v for k, v in config.options.items() if "webhook" not in k}
    bare = psp.adapter(replace(config, webhook_secrets=(), options=bare_options))
    with pytest.raises(WebhookRejected):
        bare.parse_webhook(headers, body, NOW)
    await bare.aclose()


@over()
async def test_a_non_ascii_signature_header_is_rejected_not_an_error(psp, emulated):
    _, _, headers, body = await paid_webhook(psp, emulated)
    for name in headers:
        for value in ("fírma", "²", "\u00ff" * 64):
            changed = {**headers, name: value}
            # What the webhook route passes: Starlette decodes header bytes as latin-1.
            raw = [(k.lower().encode(), v.encode()) for k, v in changed.items()]
            for given in (Headers(raw=raw), changed):
                with pytest.raises(WebhookRejected):
                    emulated.adapter.parse_webhook(given, body, NOW)


@over()
@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b"{}", b'{"id": "e1"}', b'{"id": "e1", "type": "order.paid"}']
)
async def test_a_signed_body_that_is_no_event_is_rejected(psp, emulated, body):
    _, _, headers, _ = await paid_webhook(psp, emulated)
    try:
        signed = emulated.emulator.sign(body, NOW)
    except (ValueError, KeyError, TypeError):
        signed = headers  # a scheme that signs a part of the body cannot sign this body
    with pytest.raises(WebhookRejected):
        emulated.adapter.parse_webhook(signed, body, NOW)
