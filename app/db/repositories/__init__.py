"""The only home of queries: each module reads and writes one kind of row.

Repositories run statements on the connection they are given and never commit:
the service's `Database.transaction()` block does, once per use case.
"""
