"""The composition root: settings -> engine, clock, providers, breakers, services,
schema; and one Starlette app with /graphql, /healthz, /readyz, /metrics and,
outside production, /sandbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pybreaker
import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.db.migrate import upgrade
from app.events.broker import Broker, InProcessBroker
from app.events.redis_broker import RedisBroker
from app.events.relay import OutboxRelay
from app.http.health import healthz, readyz
from app.http.limits import BodySizeLimit
from app.http.metrics import metrics
from app.http.webhooks import receive_webhook
from app.resilience.breaker import Breakers
from app.services.auth import Authenticator
from app.services.confirm import ConfirmService
from app.services.container import Services
from app.services.intents import IntentService
from app.services.live import LiveService
from app.services.merchants import MerchantService
from app.services.provider_events import ProviderEventService
from app.services.refunds import RefundService
from app.services.routing import Router
from providers.base import Provider, ProviderConfig
from providers.registry import ADAPTERS, build_provider
from providers.sandbox.app import Sandbox, adapter_options
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from resolvers.schema import build_schema
from resolvers.view import CobroGraphQL

log = logging.getLogger("cobro")

# Host name the embedded sandbox answers on through the in-process transport.
SANDBOX_HOST = "http://sandbox.internal"


@dataclass
class Runtime:
    """Everything the running app holds, built at start-up, closed at shutdown."""

    settings: Settings
    services: Services
    providers: dict[str, Provider]
    sandbox: Sandbox | None
    broker: Broker
    relay: OutboxRelay
    readiness_checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or Clock()
    db = Database(settings.database_url)
    sandbox = _build_sandbox(settings, clock) if settings.sandbox_enabled else None
    providers = {
        name: _build_provider(name, settings, sandbox)
        for name in ADAPTERS
        if settings.sandbox_enabled or settings.provider(name).base_url
    }
    breakers = Breakers(
        list(providers),
        fail_max=settings.breaker_fail_max,
        reset_seconds=settings.breaker_reset_seconds,
        storage=_shared_circuits(settings.redis_url) if settings.redis_url else None,
    )
    broker: Broker = RedisBroker(settings.redis_url) if settings.redis_url else InProcessBroker()
    relay = OutboxRelay(db, broker, clock)
    router = Router(settings.methods, providers, breakers)
    services = Services(
        db=db,
        clock=clock,
        auth=Authenticator(db),
        router=router,
        merchants=MerchantService(db, clock),
        intents=IntentService(db, clock, router),
        confirm=ConfirmService(
            db,
            clock,
            router,
            lease_seconds=settings.confirm_lease_seconds,
            spei_expiry=timedelta(hours=settings.spei_expiry_hours),
        ),
        refunds=RefundService(db, clock, router, settings.spei_payout_providers),
        provider_events=ProviderEventService(db, clock),
        live=LiveService(db, broker, clock),
    )
    runtime = Runtime(settings, services, providers, sandbox, broker, relay)
    runtime.readiness_checks["broker"] = broker.ping
    runtime.closers += [p.aclose for p in providers.values()]
    runtime.closers += [broker.close, db.dispose]
    return runtime


def _shared_circuits(url: str) -> Callable[[str], pybreaker.CircuitBreakerStorage]:
    """Circuit state in Redis, so every process sees a PSP's circuit open at once.

    pybreaker's storage is synchronous: each state check is one short blocking round
    trip (about 0.1 ms on loopback), bounded by these timeouts when Redis is away,
    when pybreaker falls back to CLOSED.
    """
    client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
    return lambda name: pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, client, namespace=f"cobro:circuit:{name}"
    )


def _build_sandbox(settings: Settings, clock: Clock) -> Sandbox:
    configs = {
        name: EmulatorConfig(
            api_key=settings.provider(name).api_key.get_secret_value(),
            api_secret=settings.provider(name).api_secret.get_secret_value(),
            webhook_secret=settings.provider(name).webhook_secrets[0].get_secret_value(),
        )
        for name in ADAPTERS
    }
    return Sandbox(SandboxState(clock=clock, public_url=settings.base_url), configs)


def _build_provider(name: str, settings: Settings, sandbox: Sandbox | None) -> Provider:
    own = settings.provider(name)
    transport = None
    base_url = own.base_url
    options = dict(own.options)
    if base_url is None:
        assert sandbox is not None, "outside the sandbox every provider needs a base_url"
        base_url = f"{SANDBOX_HOST}/{name}"
        transport = httpx.ASGITransport(app=sandbox.app, raise_app_exceptions=False)
    if settings.sandbox_enabled and not options:
        options = adapter_options(name)
    config = ProviderConfig(
        base_url=base_url,
        api_key=own.api_key.get_secret_value(),
        api_secret=own.api_secret.get_secret_value(),
        webhook_secrets=tuple(s.get_secret_value() for s in own.webhook_secrets),
        timeout_seconds=settings.provider_timeout_seconds,
        connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        public_url=settings.base_url,
        options=options,
    )
    return build_provider(name, config, transport)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    runtime = build_runtime(settings, clock)
    services = runtime.services
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_tokens=settings.max_query_tokens,
        max_aliases=settings.max_query_aliases,
    )
    graphql = CobroGraphQL(
        services,
        schema=schema,
        graphql_ide="graphiql" if settings.sandbox_enabled else None,
    )
    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/webhooks/{provider}", receive_webhook, methods=["POST"]),
    ]
    if runtime.sandbox is not None:
        routes.append(Mount("/sandbox", app=runtime.sandbox.app))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.sandbox_enabled:
            await upgrade(services.db)
            await services.merchants.ensure_dev_merchant(
                settings.dev_secret_key, settings.dev_publishable_key
            )
        if runtime.sandbox is not None and runtime.sandbox.state.webhook_client is None:
            if settings.sandbox_webhook_url:
                client = httpx.AsyncClient(base_url=settings.sandbox_webhook_url, timeout=10)
            else:
                client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=settings.base_url
                )
            runtime.sandbox.state.webhook_client = client
            runtime.closers.insert(0, client.aclose)
        await runtime.broker.start()
        tasks = [asyncio.create_task(runtime.relay.run(), name="outbox-relay")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for close in runtime.closers:
                await close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
    )
    app.state.runtime = runtime
    return app
