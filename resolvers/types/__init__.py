"""Strawberry output types, each built from a domain value by `from_domain`."""
