"""Query fields: thin calls into the services."""

from __future__ import annotations

import strawberry

from app.domain.money import parse_amount
from app.services.auth import require_secret_key
from app.services.payment_links import link_cursor
from app.services.payouts import payout_cursor
from resolvers.context import Context
from resolvers.errors import intent_or_none
from resolvers.scalars import DecimalString
from resolvers.types.catalog import PaymentMethod, ProviderStatus
from resolvers.types.enums import Currency, PaymentIntentStatus, PayoutStatus
from resolvers.types.intent import PaymentIntent
from resolvers.types.keys import ApiKey
from resolvers.types.pagination import PageInfo, PaymentIntentConnection, PaymentIntentEdge
from resolvers.types.payment_link import PaymentLink, PaymentLinkConnection, PaymentLinkEdge
from resolvers.types.payout import Payout, PayoutConnection, PayoutEdge
from resolvers.types.webhooks import WebhookDelivery, WebhookEndpoint

Info = strawberry.Info[Context, None]


@strawberry.type
class Query:
    @strawberry.field(
        description="The payment methods a checkout may offer for this amount; with a "
        "client secret, only those its intent allows."
    )
    async def payment_methods(
        self, info: Info, amount: DecimalString, currency: Currency = Currency.MXN
    ) -> list[PaymentMethod]:
        services = info.context.services
        options = await services.intents.payment_options(
            info.context.caller(), parse_amount(amount, currency)
        )
        return [PaymentMethod.from_option(option) for option in options]

    @strawberry.field
    async def payment_intent(self, info: Info, id: strawberry.ID) -> PaymentIntent | None:
        context = info.context
        found = await context.services.intents.get(context.caller(), str(id))
        return intent_or_none(found, context)

    @strawberry.field(description="The merchant's intents, newest first (secret key).")
    async def payment_intents(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: PaymentIntentStatus | None = None,
    ) -> PaymentIntentConnection:
        context = info.context
        page = await context.services.intents.list(
            context.caller(), first=20 if first is None else first, after=after, status=status
        )
        edges = [
            PaymentIntentEdge(
                node=PaymentIntent.from_domain(intent, context.principal),
                cursor=page.cursor(intent),
            )
            for intent in page.intents
        ]
        return PaymentIntentConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="One payout; null when it is not yours (secret key).")
    async def payout(self, info: Info, id: strawberry.ID) -> Payout | None:
        services = info.context.services
        found = await services.payouts.get(info.context.caller(), str(id))
        return (
            None if found is None else Payout.from_domain(found, services.payouts.proof_url(found))
        )

    @strawberry.field(description="The merchant's payouts, newest first (secret key).")
    async def payouts(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: PayoutStatus | None = None,
    ) -> PayoutConnection:
        services = info.context.services
        page = await services.payouts.list(
            info.context.caller(), first=20 if first is None else first, after=after, status=status
        )
        edges = [
            PayoutEdge(
                node=Payout.from_domain(payout, services.payouts.proof_url(payout)),
                cursor=payout_cursor(payout),
            )
            for payout in page.payouts
        ]
        return PayoutConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="The merchant's payment links, newest first (secret key).")
    async def payment_links(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> PaymentLinkConnection:
        services = info.context.services
        page = await services.payment_links.list(
            info.context.caller(), first=20 if first is None else first, after=after
        )
        edges = [
            PaymentLinkEdge(node=PaymentLink.from_domain(link), cursor=link_cursor(link))
            for link in page.links
        ]
        return PaymentLinkConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="Each PSP, the methods it serves, and its circuit's state.")
    async def providers(self, info: Info) -> list[ProviderStatus]:
        require_secret_key(info.context.caller())
        states = info.context.services.router.provider_states()
        return [ProviderStatus.from_state(state) for state in states]

    @strawberry.field(description="The merchant's webhook endpoints (secret key).")
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        context = info.context
        endpoints = await context.services.webhook_endpoints.list(context.caller())
        return [WebhookEndpoint.from_endpoint(e) for e in endpoints]

    @strawberry.field(description="Recent deliveries to one endpoint, newest first.")
    async def webhook_deliveries(
        self, info: Info, endpoint_id: strawberry.ID, first: int | None = 20
    ) -> list[WebhookDelivery]:
        context = info.context
        deliveries = await context.services.webhook_endpoints.deliveries(
            context.caller(), str(endpoint_id), 20 if first is None else first
        )
        return [WebhookDelivery.from_delivery(d) for d in deliveries]

    @strawberry.field(
        description="The keys that work now, without the keys: last4, and when a rolled "
        "one stops (secret key)."
    )
    async def api_keys(self, info: Info) -> list[ApiKey]:
        context = info.context
        keys = await context.services.api_keys.list(context.caller())
        return [ApiKey.from_domain(k) for k in keys]
