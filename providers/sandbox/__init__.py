"""Local emulators of the PSPs, mounted at /sandbox outside production.

Each emulator answers its adapter the way that PSP's API would (same paths,
encodings, statuses and errors) and sends that PSP's webhooks, signed, when a
payment settles. Nothing here is imported by an adapter.
"""
