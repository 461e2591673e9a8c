from __future__ import annotations

import strawberry

from app.domain.errors import CobroError, Forbidden, Unauthenticated
from resolvers.context import Context
from resolvers.inputs import CreateWebhookEndpointInput
from resolvers.types.payloads import UserError
from resolvers.types.webhooks import WebhookEndpoint, WebhookEndpointPayload

Info = strawberry.Info[Context, None]


@strawberry.mutation(description="Register an endpoint; its signing secret is shown only here.")
async def create_webhook_endpoint(
    info: Info, input: CreateWebhookEndpointInput
) -> WebhookEndpointPayload:
    context = info.context
    try:
        created = await context.services.webhook_endpoints.create(
            context.caller(), input.url, input.events
        )
    except (Unauthenticated, Forbidden):
        raise
    except CobroError as error:
        return WebhookEndpointPayload(webhook_endpoint=None, errors=[UserError.from_error(error)])
    endpoint = WebhookEndpoint.from_endpoint(created.endpoint, secret=created.secret)
    return WebhookEndpointPayload(webhook_endpoint=endpoint, errors=[])


@strawberry.mutation(description="Stop sending events to an endpoint.")
async def delete_webhook_endpoint(info: Info, id: strawberry.ID) -> WebhookEndpointPayload:
    context = info.context
    try:
        deleted = await context.services.webhook_endpoints.delete(context.caller(), str(id))
    except (Unauthenticated, Forbidden):
        raise
    except CobroError as error:
        return WebhookEndpointPayload(webhook_endpoint=None, errors=[UserError.from_error(error)])
    endpoint = WebhookEndpoint.from_endpoint(deleted)
    endpoint.enabled = False
    return WebhookEndpointPayload(webhook_endpoint=endpoint, errors=[])
