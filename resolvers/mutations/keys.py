"""Rolling API keys and webhook secrets (contract section 10): one service call each."""

from __future__ import annotations

import strawberry

from app.domain.keys import DEFAULT_OVERLAP_HOURS
from resolvers.context import Context
from resolvers.errors import attempt
from resolvers.types.enums import ApiKeyKind
from resolvers.types.keys import ApiKey, ApiKeyPayload
from resolvers.types.webhooks import WebhookEndpoint, WebhookEndpointPayload

Info = strawberry.Info[Context, None]


@strawberry.mutation(
    description="A new key of this kind, shown only here; the old one keeps working for "
    "expireOldInHours (0: stops at once, at most 168) (secret key)."
)
async def roll_api_key(
    info: Info, kind: ApiKeyKind, expire_old_in_hours: int | None = DEFAULT_OVERLAP_HOURS
) -> ApiKeyPayload:
    context = info.context
    rolled, errors = await attempt(
        lambda: context.services.api_keys.roll(context.caller(), kind, expire_old_in_hours)
    )
    return ApiKeyPayload(api_key=ApiKey.from_domain(rolled) if rolled else None, errors=errors)


@strawberry.mutation(
    description="A new signing secret, shown only here; deliveries carry a signature by the "
    "old one too for expireOldInHours (0: at once, at most 168) (secret key)."
)
async def roll_webhook_endpoint_secret(
    info: Info, id: strawberry.ID, expire_old_in_hours: int | None = DEFAULT_OVERLAP_HOURS
) -> WebhookEndpointPayload:
    context = info.context
    rolled, errors = await attempt(
        lambda: context.services.webhook_endpoints.roll_secret(
            context.caller(), str(id), expire_old_in_hours
        )
    )
    endpoint = (
        WebhookEndpoint.from_endpoint(rolled.endpoint, secret=rolled.secret) if rolled else None
    )
    return WebhookEndpointPayload(webhook_endpoint=endpoint, errors=errors)
