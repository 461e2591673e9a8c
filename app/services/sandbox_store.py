"""The sandbox PSPs' store in the app's own database (tables `sandbox_*`), so what
they issued outlives a restart and every process of a cluster serves the same PSPs
(providers/sandbox/store.py says how the emulators use it).

Reads go through `Database.read()`; each call's writes are one
`Database.transaction()` (on SQLite, a savepoint in the writer's group commit; on
PostgreSQL, new rows alone are one statement: app/db/write_behind.py). A write that
lost a race (a version moved, a handle or key taken: a unique violation) rolls the
whole transaction back and raises Conflict, and the emulator runs its call again.
Objects are written in key order, so two transactions on PostgreSQL lock rows in the
same order and cannot deadlock.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.db.dialect import is_unique_violation
from app.db.engine import Database
from app.db.repositories import sandbox as rows
from providers.sandbox.store import (
    REDELIVERY_MEMORY,
    Answer,
    Conflict,
    Doc,
    Faulty,
    Handle,
    Writes,
    decode,
)


class DatabaseSandboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, provider: str, kind: str, key: str) -> Doc | None:
        async with self.db.read() as conn:
            found = await rows.get(conn, provider, kind, key)
        return None if found is None else Doc(decode(found[0]), found[1])

    async def find(self, provider: str, kind: str, ref: str) -> list[tuple[str, Doc]]:
        async with self.db.read() as conn:
            found = await rows.find(conn, provider, kind, ref)
        return [(key, Doc(decode(body), version)) for key, body, version in found]

    async def handle(self, name: str) -> Handle | None:
        async with self.db.read() as conn:
            found = await rows.handle(conn, name)
        return None if found is None else Handle(*found)

    async def answer(self, provider: str, key: str) -> Answer | None:
        async with self.db.read() as conn:
            found = await rows.answer(conn, provider, key)
        return None if found is None else Answer(*found)

    async def commit(self, writes: Writes) -> None:
        p = writes.provider
        try:
            async with self.db.transaction() as conn:
                if writes.only_if_healthy:
                    await rows.only_if_healthy(conn, p)
                for (kind, key), w in sorted(writes.objects.items()):
                    if w.version is None:
                        await rows.add_object(conn, p, kind, key, w.ref, w.body)
                    elif not await rows.update_object(conn, p, kind, key, w.ref, w.body, w.version):
                        raise Conflict(f"{p} {kind} {key} was changed by another call")
                for name, target in sorted(writes.handles.items()):
                    if target is None:
                        await rows.unbind(conn, name)
                    else:
                        await rows.bind(
                            conn,
                            name,
                            target.provider,
                            target.kind,
                            target.key,
                            replace=name in writes.replace_handles,
                        )
                if writes.answer is not None:
                    key, answer = writes.answer
                    await rows.store_answer(
                        conn, p, key, answer.fingerprint, answer.status, answer.body
                    )
                for body in writes.webhooks:
                    await rows.add_webhook(conn, p, body, REDELIVERY_MEMORY)
        except IntegrityError as error:
            if rows.refused_by_fault(error):
                raise Faulty(p) from error
            if is_unique_violation(error):  # an object, handle or key another call took
                raise Conflict(f"{p}: {error.orig}") from error
            raise

    async def fault(self, provider: str) -> str:
        async with self.db.read() as conn:
            return await rows.fault(conn, provider) or "ok"

    async def set_fault(self, provider: str, mode: str) -> None:
        async with self.db.transaction() as conn:
            await rows.set_fault(conn, provider, mode)

    async def count_call(self, provider: str) -> int:
        async with self.db.transaction() as conn:
            return await rows.count_call(conn, provider)

    async def recent_webhooks(self, count: int) -> list[tuple[str, bytes]]:
        async with self.db.read() as conn:
            return await rows.recent_webhooks(conn, count)
