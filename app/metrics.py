"""Prometheus metrics the code bumps as it works; served at /metrics by
app/http/metrics.py, with the gauges read at scrape time (app/http/metrics.py's
`RuntimeGauges`: circuits, outbox lag, pending webhooks, database pool).

Every label takes a bounded set of values: route templates, GraphQL root field
names (the schema's), error codes from a fixed list, provider and job names from
the configuration. Never an id, never text a client chose.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

# Seconds: from a cached read (about 0.5 ms) to a PSP that times out (3 s and more).
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
JOB_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

PROVIDER_CALLS = Counter(
    "cobro_provider_calls_total",
    "Calls to PSPs by provider and outcome (ok, error, circuit_open).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
INTENT_CHANGES = Counter(
    "cobro_intent_changes_total",
    "Payment intent changes by the status they left the intent in.",
    ["status"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Histogram(
    "cobro_http_request_duration_seconds",
    "HTTP requests by route template, method and status code, and how long they took.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
GRAPHQL_OPERATIONS = Histogram(
    "cobro_graphql_operation_duration_seconds",
    "GraphQL operations over HTTP by type and root field (`multiple` for several, "
    "`invalid` when the document did not parse or validate), and how long they took.",
    ["operation_type", "operation"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ERRORS = Counter(
    "cobro_errors_total",
    "Errors answered to clients, by code: GraphQL errors (kind=graphql) and mutation "
    "UserErrors (kind=user).",
    ["kind", "code"],
    registry=REGISTRY,
)
PROVIDER_CALL_SECONDS = Histogram(
    "cobro_provider_call_duration_seconds",
    "PSP calls by provider and outcome: ok; refused (a decline or a 4xx, final); "
    "unavailable (did not happen: refused connection, 503, 429); unknown (may have "
    "happened: timeout, 500); circuit_open (not tried).",
    ["provider", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SUBSCRIPTIONS_OPEN = Gauge(
    "cobro_subscriptions_open",
    "GraphQL subscriptions open in this process, by protocol (graphql-transport-ws, "
    "graphql-ws on WebSockets; graphql-sse, multipart-subscription over HTTP).",
    ["transport"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "cobro_webhook_deliveries_total",
    "Merchant webhook delivery attempts by result: delivered (2xx), retrying, failed "
    "(gave up after the retry window), unrecorded (its lease ran out first).",
    ["result"],
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "cobro_job_runs_total",
    "Background job runs by job and result (ok, failed, db_unavailable).",
    ["job", "result"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "cobro_job_duration_seconds",
    "How long each background job run took.",
    ["job"],
    buckets=JOB_BUCKETS,
    registry=REGISTRY,
)
JOB_LAST_SUCCESS = Gauge(
    "cobro_job_last_success_timestamp_seconds",
    "Unix time of each background job's last successful run in this process.",
    ["job"],
    registry=REGISTRY,
)

# Labels that must stay bounded whatever a request carries.
HTTP_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS"})
ROUTES = {
    "/graphql": "/graphql",
    "/healthz": "/healthz",
    "/readyz": "/readyz",
    "/metrics": "/metrics",
}
PREFIXES = (("/webhooks/", "/webhooks/{provider}"), ("/sandbox/", "/sandbox"))
ERROR_CODES = frozenset(
    {
        "INVALID_INPUT", "INVALID_AMOUNT", "AMOUNT_OUT_OF_RANGE", "UNSUPPORTED_CURRENCY",
        "METHOD_NOT_ALLOWED", "METHOD_UNAVAILABLE", "INVALID_STATE", "NOT_FOUND",
        "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS", "PROVIDER_UNAVAILABLE",
        "CARD_DECLINED", "CARD_TOKEN_INVALID", "INSTALLMENTS_UNAVAILABLE",
        "CAPTURE_EXCEEDS_AUTHORIZED", "AUTHORIZATION_EXPIRED", "INVALID_CLABE",
        "REFUND_EXCEEDS_AMOUNT", "QUOTE_EXPIRED", "INVALID_CONCEPT", "INVALID_REFERENCE",
        "PAYOUT_NOT_CANCELABLE",
        "UNAUTHENTICATED", "FORBIDDEN", "PAYMENT_FAILED", "SERVICE_UNAVAILABLE",
        "RATE_LIMITED", "INTERNAL", "GRAPHQL_VALIDATION_FAILED", "PAYLOAD_TOO_LARGE",
        "PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_HASH_MISMATCH",
    }
)  # fmt: skip


def route_of(path: str) -> str:
    """The route template a path belongs to (`other` for anything unknown)."""
    route = ROUTES.get(path)
    if route is not None:
        return route
    for prefix, template in PREFIXES:
        if path.startswith(prefix):
            return template
    return "other"


def count_error(kind: str, code: object) -> None:
    ERRORS.labels(kind, code if code in ERROR_CODES else "OTHER").inc()
