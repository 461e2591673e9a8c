"""Cobro: the core (config, pure domain, use cases, storage, events, HTTP sidecar)."""
