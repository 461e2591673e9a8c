"""Every use case the edges may call, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import Clock
from app.db.engine import Database
from app.services.api_keys import ApiKeyService
from app.services.auth import Authenticator
from app.services.capture import CaptureService
from app.services.confirm import ConfirmService
from app.services.expiry import ExpiryService
from app.services.intents import IntentService
from app.services.live import LiveService
from app.services.merchants import MerchantService
from app.services.payment_links import PaymentLinkService
from app.services.payouts import PayoutService
from app.services.provider_events import ProviderEventService
from app.services.rate_limits import RateLimiter
from app.services.reconcile import ReconciliationService
from app.services.refunds import RefundService
from app.services.routing import Router
from app.services.webhook_endpoints import WebhookEndpointService


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    clock: Clock
    auth: Authenticator
    router: Router
    merchants: MerchantService
    api_keys: ApiKeyService
    intents: IntentService
    confirm: ConfirmService
    refunds: RefundService
    payouts: PayoutService
    provider_events: ProviderEventService
    live: LiveService
    webhook_endpoints: WebhookEndpointService
    expiry: ExpiryService
    reconciliation: ReconciliationService
    rate_limiter: RateLimiter
    capture: CaptureService
    payment_links: PaymentLinkService
    # Where customers reach this API: the hosted pages' links (app/web) are under it.
    public_url: str = ""
