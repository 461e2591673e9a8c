"""Pushing committed changes to live subscribers: the outbox relay and the brokers."""
