"""Building the running system from settings: engine, clock, providers, breakers,
broker, relay, services and background jobs. Both the API (app/main.py) and
`cobro worker` start from here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app import shutdown
from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.db.migrate import upgrade
from app.domain.cep import BANXICO_CEP
from app.domain.errors import CobroError
from app.events.broker import Broker, InProcessBroker
from app.events.deliveries import MerchantWebhooks
from app.events.redis_broker import RedisBroker
from app.events.relay import OutboxRelay
from app.http.metrics import RuntimeGauges
from app.resilience.breaker import Breakers
from app.resilience.shared import SharedCircuits
from app.services.api_keys import ApiKeyService
from app.services.auth import Authenticator
from app.services.capture import CaptureService
from app.services.cards import catalog_from
from app.services.changes import count_committed
from app.services.charge_search import ChargeSearch
from app.services.confirm import ConfirmService
from app.services.container import Services
from app.services.expiry import ExpiryService
from app.services.housekeeping import Housekeeping
from app.services.intents import IntentService
from app.services.live import LiveService
from app.services.live_payouts import PayoutLive
from app.services.merchants import MerchantService
from app.services.payment_links import PaymentLinkService
from app.services.payout_sending import PayoutSender
from app.services.payouts import PayoutService
from app.services.provider_events import ProviderEventService
from app.services.rate_limits import RateLimiter
from app.services.reconcile import ReconciliationService
from app.services.refunds import RefundService
from app.services.routing import Router
from app.services.sandbox_clock import SandboxClock
from app.services.sandbox_store import DatabaseSandboxStore
from app.services.webhook_endpoints import WebhookEndpointService
from app.trace_context import trace_calls
from app.tracing import Tracing
from app.worker import Job, Worker
from providers.base import Provider, ProviderConfig
from providers.http import PspHttp
from providers.registry import ADAPTERS, build_provider
from providers.sandbox.app import Sandbox, adapter_options
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from providers.sandbox.transport import InProcess

# Host name the embedded sandbox answers on through the in-process transport.
SANDBOX_HOST = "http://sandbox.internal"
# How often the worker looks for PSP calls left without an answer, at most.
UNANSWERED_SCAN_SECONDS = 15.0
# How often every process adopts a sandbox clock another process moved.
CLOCK_SYNC_SECONDS = 1.0


@dataclass
class Runtime:
    """Everything the running system holds, built at start-up, closed at shutdown."""

    settings: Settings
    services: Services
    providers: dict[str, Provider]
    sandbox: Sandbox | None
    broker: Broker
    relay: OutboxRelay
    webhooks: MerchantWebhooks
    worker: Worker
    # What /metrics reads at scrape time: circuits, backlogs, the database pool.
    gauges: RuntimeGauges | None = None
    # Set when traces are on (app/tracing.py).
    tracing: Tracing | None = None
    readiness_checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    # Loops every process runs (the relay's fast path, shared circuit states).
    loops: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    @asynccontextmanager
    async def running(self, *, worker: bool) -> AsyncIterator[None]:
        """Broker connected, relay publishing, and (if asked) the background jobs."""
        if self.settings.sandbox_enabled:
            await upgrade(self.services.db)
            await self.services.merchants.ensure_dev_merchant(
                self.settings.dev_secret_key, self.settings.dev_publishable_key
            )
        await self.broker.start()
        tasks = [
            asyncio.create_task(_coroutine(loop), name=getattr(loop, "__qualname__", None))
            for loop in self.loops
        ]
        if worker:
            tasks.append(asyncio.create_task(self.worker.run(), name="worker"))
        try:
            yield
        finally:
            await shutdown.stop(tasks)
            await shutdown.close_all(self.closers)


def build_runtime(
    settings: Settings, clock: Clock | None = None, tracing: Tracing | None = None
) -> Runtime:
    """`tracing`: traces on (app/tracing.py), off when None."""
    clock = clock or Clock()
    tracer = tracing.tracer if tracing is not None else None
    db = Database(
        settings.database_url,
        fast_path=settings.postgres_fast_path,
        sqlite_prepared=settings.sqlite_prepared,
    )
    sandbox = _build_sandbox(settings, clock, db) if settings.sandbox_enabled else None
    providers = {
        name: _build_provider(name, settings, sandbox)
        for name in ADAPTERS
        if settings.sandbox_enabled or settings.provider(name).base_url
    }
    breakers = Breakers(
        list(providers),
        fail_max=settings.breaker_fail_max,
        reset_seconds=settings.breaker_reset_seconds,
    )
    shared = SharedCircuits(settings.redis_url, breakers) if settings.redis_url else None
    broker: Broker = RedisBroker(settings.redis_url) if settings.redis_url else InProcessBroker()
    webhooks = MerchantWebhooks(
        db,
        clock,
        allow_private=settings.sandbox_enabled,
        retry_base_seconds=settings.webhook_retry_base_seconds,
    )
    relay = OutboxRelay(db, broker, clock, webhooks, tracer)
    db.add_after_commit(count_committed)  # cobro_intent_changes_total
    cards = catalog_from(
        settings, providers, settings.base_url if settings.sandbox_enabled else None
    )
    router = Router(settings.methods, providers, breakers, cards)
    provider_events = ProviderEventService(db, clock)
    confirm = ConfirmService(
        db,
        clock,
        router,
        lease_seconds=settings.confirm_lease_seconds,
        spei_expiry=timedelta(hours=settings.spei_expiry_hours),
        public_url=settings.base_url,
    )
    payout_sender = PayoutSender(db, clock, router, settings.payout_providers)
    refunds = RefundService(db, clock, router, payout_sender)
    payouts = PayoutService(
        db,
        clock,
        payout_sender,
        PayoutLive(db, broker),
        settings.cep_url
        or (f"{settings.base_url}/sandbox/cep" if settings.sandbox_enabled else BANXICO_CEP),
    )
    quiet_for = timedelta(seconds=settings.reconcile_after_seconds)
    every = timedelta(seconds=settings.reconcile_every_seconds)
    searches = ChargeSearch(db, clock, router, confirm, refunds, quiet_for=quiet_for, every=every)
    auth = Authenticator(db, clock)
    intents = IntentService(db, clock, router)
    services = Services(
        db=db,
        clock=clock,
        auth=auth,
        router=router,
        merchants=MerchantService(db, clock),
        api_keys=ApiKeyService(db, clock, auth),
        intents=intents,
        confirm=confirm,
        refunds=refunds,
        payouts=payouts,
        provider_events=provider_events,
        live=LiveService(db, broker, clock, tracer),
        webhook_endpoints=WebhookEndpointService(db, clock, allow_private=settings.sandbox_enabled),
        expiry=ExpiryService(db, clock, router),
        reconciliation=ReconciliationService(
            db,
            clock,
            router,
            provider_events,
            quiet_for=quiet_for,
            every=every,
            searches=searches,
        ),
        rate_limiter=RateLimiter(settings.rate_limits.parsed(), settings.redis_url),
        capture=CaptureService(db, clock, router),
        payment_links=PaymentLinkService(db, clock, intents),
        public_url=settings.base_url,
    )
    worker = Worker(_jobs(settings, services, webhooks), tracer)
    runtime = Runtime(settings, services, providers, sandbox, broker, relay, webhooks, worker)
    runtime.gauges = RuntimeGauges(db, clock, router)
    if sandbox is not None:
        sandbox.on_clock_advance = _clock_advance(services)
    runtime.loops.append(relay.run)
    runtime.readiness_checks["broker"] = broker.ping
    if shared is not None:
        runtime.loops.append(shared.run)
        runtime.closers.append(shared.aclose)
    runtime.closers += [p.aclose for p in providers.values()]
    runtime.closers += [webhooks.aclose, broker.close, services.rate_limiter.close, db.dispose]
    if tracing is not None:
        _instrument(runtime, tracing)
        runtime.closers.append(tracing.shutdown)  # last: flushes the spans of the rest
    return runtime


def _instrument(runtime: Runtime, tracing: Tracing) -> None:
    """The maintained instrumentations on this runtime's own engines and clients, and a
    span around each call into a service (the HTTP side is app/main.py's)."""
    runtime.tracing = tracing
    services = runtime.services
    tracing.engines(services.db.engines)
    if isinstance(runtime.broker, RedisBroker):
        tracing.redis(runtime.broker.client)
    for name, provider in runtime.providers.items():
        # Every adapter talks to its PSP through PspHttp (providers/http.py).
        http = getattr(provider, "http", None)
        if isinstance(http, PspHttp):
            tracing.http(http.client, name)
    tracing.http(runtime.webhooks.client, "merchant-webhooks")
    for service in (
        services.merchants,
        services.api_keys,
        services.intents,
        services.confirm,
        services.refunds,
        services.provider_events,
        services.webhook_endpoints,
        services.expiry,
        services.reconciliation,
    ):
        trace_calls(service, tracing.tracer)


async def _coroutine(loop: Callable[[], Awaitable[object]]) -> None:
    await loop()


def _jobs(settings: Settings, services: Services, webhooks: MerchantWebhooks) -> list[Job]:
    housekeeping = Housekeeping(
        services.db, services.clock, timedelta(days=settings.outbox_retention_days)
    )
    unanswered = timedelta(seconds=settings.unanswered_seconds)
    scan = min(UNANSWERED_SCAN_SECONDS, settings.unanswered_seconds)
    jobs = [
        Job("expiry", settings.expiry_sweep_seconds, services.expiry.sweep),
        # Card authorizations nobody captured by captureBefore are voided.
        Job("authorization-lapse", settings.expiry_sweep_seconds, services.capture.void_lapsed),
        Job("webhook-delivery", settings.delivery_poll_seconds, webhooks.dispatch_due),
        Job(
            "reconciliation",
            settings.reconcile_every_seconds / 10,
            services.reconciliation.run_once,
        ),
        Job("housekeeping", 3_600, housekeeping.run_once),
        # Attempts and refunds whose PSP never answered: ask again, same key.
        Job("stale-attempts", scan, lambda: services.confirm.recover_stale(unanswered)),
        Job("pending-refunds", scan, lambda: services.refunds.resolve_pending(unanswered)),
        # Payouts nobody is sending: replay an unanswered attempt, or try the route again.
        Job("payouts-send", scan, services.payouts.sender.resend),
        Job(
            "payouts-reconcile",
            settings.reconcile_every_seconds / 10,
            lambda: services.payouts.sender.reconcile(
                timedelta(seconds=settings.reconcile_after_seconds)
            ),
        ),
        # Webhooks that arrived before the payment they name was recorded.
        Job("unmatched-events", 10, services.provider_events.retry_unmatched),
    ]
    if settings.sandbox_enabled:
        clock = SandboxClock(services.db, services.clock)
        jobs.append(Job("sandbox-clock", CLOCK_SYNC_SECONDS, clock.refresh))
    return jobs


def _clock_advance(services: Services) -> Callable[[object], Awaitable[dict[str, Any]]]:
    clock = SandboxClock(services.db, services.clock)

    async def advance(seconds: object) -> dict[str, Any]:
        """Move the shared sandbox clock and run the expiry sweep at once."""
        try:
            now = await clock.advance(seconds)
        except CobroError as error:
            raise ValueError(error.message) from None
        expired = await services.expiry.sweep()
        voided = await services.capture.void_lapsed()
        return {"now": now.isoformat(), "expired": expired, "voided": voided}

    return advance


def _build_sandbox(settings: Settings, clock: Clock, db: Database) -> Sandbox:
    configs = {
        name: EmulatorConfig(
            api_key=settings.provider(name).api_key.get_secret_value(),
            api_secret=settings.provider(name).api_secret.get_secret_value(),
            webhook_secret=settings.provider(name).webhook_secrets[0].get_secret_value(),
        )
        for name in ADAPTERS
    }
    # The PSPs keep what they know in Cobro's own database: it outlives this process and
    # is the same for every process on that database.
    state = SandboxState(clock=clock, public_url=settings.base_url, store=DatabaseSandboxStore(db))
    return Sandbox(state, configs)


def _build_provider(name: str, settings: Settings, sandbox: Sandbox | None) -> Provider:
    own = settings.provider(name)
    transport = None
    base_url = own.base_url
    options = dict(own.options)
    if base_url is None:
        assert sandbox is not None, "outside the sandbox every provider needs a base_url"
        base_url = f"{SANDBOX_HOST}/{name}"
        transport = InProcess(sandbox.app, sandbox.mounts)
    if settings.sandbox_enabled and not options:
        options = adapter_options(name)
    config = ProviderConfig(
        base_url=base_url,
        api_key=own.api_key.get_secret_value(),
        api_secret=own.api_secret.get_secret_value(),
        webhook_secrets=tuple(s.get_secret_value() for s in own.webhook_secrets),
        timeout_seconds=settings.provider_timeout_seconds,
        connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        options=options,
    )
    return build_provider(name, config, transport)
