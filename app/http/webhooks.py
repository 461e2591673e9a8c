"""`POST /webhooks/{provider}`: the PSPs' door. Thin: verify, store, apply, answer.

400 for a bad or missing signature or a malformed body, 404 for a provider we do
not know, 503 while the database is down (the PSP retries), 200 only after the event
is committed (a replay gets 200 and changes
nothing). The adapter may shape the 200 body: STP wants {"mensaje": "confirmar"}.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.domain.errors import ServiceUnavailable
from providers.base import WebhookRejected

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
    except WebhookRejected as rejected:
        log.warning("rejected %s webhook: %s", name, rejected)
        return JSONResponse({"error": str(rejected)}, status_code=400)
    try:
        received = await runtime.services.provider_events.receive(events, body)
    except ServiceUnavailable as unavailable:
        # Not stored, so not acknowledged: the PSP sends it again later.
        return JSONResponse(
            {"error": unavailable.message}, status_code=503, headers={"Retry-After": "5"}
        )
    acknowledge = getattr(provider, "webhook_ack", None)
    if acknowledge is not None:
        return JSONResponse(acknowledge(events))
    return JSONResponse({"received": [{"id": r.event_id, "outcome": r.outcome} for r in received]})
