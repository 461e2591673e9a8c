"""`POST /webhooks/{provider}`: the PSPs' door. Thin: verify, store, apply, answer.

400 for a bad or missing signature (nothing proves the PSP sent it; nothing is
stored), 404 for a provider we do not know, 503 while the database is down (the PSP
retries), 200 only after the event is committed (a replay gets 200 and changes
nothing). The adapter may shape the 200 body: STP wants {"mensaje": "confirmar"}.

A validly signed event whose content is malformed (MalformedEvent) came from the PSP
and will not mend on a retry, and every PSP retries what it does not see acknowledged
(Stripe any non-2xx for 3 days, Conekta anything but 200, Bitso 5xx): it is stored as
`rejected` with its reason, nothing else changes, and it is answered 200 with
{"received": [{"id", "outcome": "rejected", "reason"}]}, or the refusal the PSP
expects (STP: the transfer is returned). A bug of ours is not caught here: it stays
a 500, logged by the server, so the PSP sends the event again once it is fixed.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.domain.errors import ServiceUnavailable
from providers.base import MalformedEvent, WebhookRejected

log = logging.getLogger("cobro.webhooks")


async def receive_webhook(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    name = request.path_params["provider"]
    provider = runtime.providers.get(name)
    if provider is None:
        return JSONResponse({"error": f"unknown provider {name!r}"}, status_code=404)
    body = await request.body()
    now = runtime.services.clock.timestamp()
    headers = dict(request.headers)
    if "token" in request.query_params:
        # PSPs that cannot sign or add headers (STP) authenticate by a token in the
        # callback URL registered with them; adapters read it as this header.
        headers["x-webhook-token"] = request.query_params["token"]
    try:
        events = provider.parse_webhook(headers, body, now)
    except MalformedEvent as malformed:
        return await _reject(runtime, name, body, malformed)
    except WebhookRejected as rejected:
        log.warning("rejected %s webhook: %s", name, rejected)
        return JSONResponse({"error": str(rejected)}, status_code=400)
    try:
        received = await runtime.services.provider_events.receive(events, body)
    except ServiceUnavailable as unavailable:
        return _unavailable(unavailable)
    acknowledge = getattr(provider, "webhook_ack", None)
    if acknowledge is not None:
        return JSONResponse(acknowledge(events))
    return JSONResponse({"received": [{"id": r.event_id, "outcome": r.outcome} for r in received]})


async def _reject(runtime: Any, name: str, body: bytes, malformed: MalformedEvent) -> JSONResponse:
    """Store a malformed signed event as rejected and acknowledge it (module docstring)."""
    try:
        rejected = await runtime.services.provider_events.reject(name, body, malformed.reason)
    except ServiceUnavailable as unavailable:
        return _unavailable(unavailable)
    if malformed.reply is not None:
        return JSONResponse(malformed.reply)
    return JSONResponse(
        {"received": [{"id": rejected.event_id, "outcome": "rejected", "reason": rejected.reason}]}
    )


def _unavailable(unavailable: ServiceUnavailable) -> JSONResponse:
    # Not stored, so not acknowledged: the PSP sends it again later.
    return JSONResponse(
        {"error": unavailable.message}, status_code=503, headers={"Retry-After": "5"}
    )
