"""Prometheus counters the core bumps; served at /metrics by app/http/metrics.py."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry()

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
