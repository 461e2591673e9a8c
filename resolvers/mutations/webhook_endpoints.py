from __future__ import annotations

import strawberry

from resolvers.context import Context
from resolvers.errors import attempt
from resolvers.inputs import CreateWebhookEndpointInput
from resolvers.types.webhooks import WebhookEndpoint, WebhookEndpointPayload

Info = strawberry.Info[Context, None]


@strawberry.mutation(description="Register an endpoint; its signing secret is shown only here.")
async def create_webhook_endpoint(
    info: Info, input: CreateWebhookEndpointInput
) -> WebhookEndpointPayload:
    context = info.context
    created, errors = await attempt(
        lambda: context.services.webhook_endpoints.create(context.caller(), input.url, input.events)
    )
    endpoint = (
        WebhookEndpoint.from_endpoint(created.endpoint, secret=created.secret) if created else None
    )
    return WebhookEndpointPayload(webhook_endpoint=endpoint, errors=errors)


@strawberry.mutation(description="Stop sending events to an endpoint.")
async def delete_webhook_endpoint(info: Info, id: strawberry.ID) -> WebhookEndpointPayload:
    context = info.context
    deleted, errors = await attempt(
        lambda: context.services.webhook_endpoints.delete(context.caller(), str(id))
    )
    endpoint = WebhookEndpoint.from_endpoint(deleted) if deleted else None
    return WebhookEndpointPayload(webhook_endpoint=endpoint, errors=errors)
