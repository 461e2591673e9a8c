"""Use cases. Each public coroutine that changes something runs in one database
transaction that writes the intent, its audit events (and, with events, its outbox
row) together: all of it happens or none."""
