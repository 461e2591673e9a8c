"""One module per mutation; `Mutation` gathers them."""

from __future__ import annotations

import strawberry

from resolvers.mutations.cancel_payment_intent import cancel_payment_intent
from resolvers.mutations.capture_payment_intent import capture_payment_intent
from resolvers.mutations.confirm_payment_intent import confirm_payment_intent
from resolvers.mutations.create_payment_intent import create_payment_intent
from resolvers.mutations.keys import roll_api_key, roll_webhook_endpoint_secret
from resolvers.mutations.payment_links import create_payment_link, deactivate_payment_link
from resolvers.mutations.payouts import cancel_payout, create_payout
from resolvers.mutations.refund_payment_intent import refund_payment_intent
from resolvers.mutations.webhook_endpoints import create_webhook_endpoint, delete_webhook_endpoint


@strawberry.type
class Mutation:
    create_payment_intent = create_payment_intent
    confirm_payment_intent = confirm_payment_intent
    cancel_payment_intent = cancel_payment_intent
    capture_payment_intent = capture_payment_intent
    refund_payment_intent = refund_payment_intent
    create_webhook_endpoint = create_webhook_endpoint
    delete_webhook_endpoint = delete_webhook_endpoint
    roll_api_key = roll_api_key
    roll_webhook_endpoint_secret = roll_webhook_endpoint_secret
    create_payout = create_payout
    cancel_payout = cancel_payout
    create_payment_link = create_payment_link
    deactivate_payment_link = deactivate_payment_link
