"""The sandbox PSPs' state (providers/sandbox/store.py says what and why): objects
under a version, handles, idempotency answers, fault modes and sent webhooks.

A write that loses a race makes the caller roll back and run its call again: an
update answers False (the version moved); a new object, handle or answer is written
behind (app/db/write_behind.py) and a key taken meanwhile fails the transaction
with a unique violation (`dialect.is_unique_violation`). The statements are built
once, here, so SQLite runs them as prepared statements.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, exists, func, insert, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore, refused_null
from app.db.tables import (
    SandboxFault,
    SandboxHandle,
    SandboxIdempotency,
    SandboxObject,
    SandboxWebhook,
)
from app.db.write_behind import write_behind

OBJ = SandboxObject.__table__
H = SandboxHandle.__table__
A = SandboxIdempotency.__table__
F = SandboxFault.__table__
W = SandboxWebhook.__table__

_OBJECT = (OBJ.c.provider == bindparam("p"), OBJ.c.kind == bindparam("k"))
_GET = select(OBJ.c.body, OBJ.c.version).where(*_OBJECT, OBJ.c.key == bindparam("ky"))
_FIND = (
    select(OBJ.c.key, OBJ.c.body, OBJ.c.version)
    .where(*_OBJECT, OBJ.c.ref == bindparam("r"))
    .order_by(OBJ.c.id)
)
_UPDATE = (
    update(OBJ)
    .where(*_OBJECT, OBJ.c.key == bindparam("ky"), OBJ.c.version == bindparam("v"))
    .values(body=bindparam("b"), ref=bindparam("r"), version=OBJ.c.version + 1)
)
_NEW_OBJECT = insert(OBJ)
_NEW_HANDLE = insert(H)
_NEW_ANSWER = insert(A)
_HANDLE = select(H.c.provider, H.c.kind, H.c.key).where(H.c.name == bindparam("n"))
_UNBIND = delete(H).where(H.c.name == bindparam("n"))
_ANSWER = select(A.c.fingerprint, A.c.status, A.c.body).where(
    A.c.provider == bindparam("p"), A.c.key == bindparam("ky")
)
_MODE = select(F.c.mode).where(F.c.provider == bindparam("p"))
# Written behind with a call's writes that count only while its PSP is healthy: inserts
# nothing then; in a fault mode it inserts a row without `calls`, which the column
# refuses, failing the whole transaction (`refused_by_fault`). Reads, locks nothing.
_ONLY_IF_HEALTHY = insert(F).from_select(
    ["provider", "mode", "calls"],
    select(
        # Named as the column: a kept INSERT names its primary key (app/db/postgres.py).
        bindparam("provider", type_=F.c.provider.type),
        bindparam("gm", type_=F.c.mode.type),
        null(),
    ).where(exists().where(F.c.provider == bindparam("p"), F.c.mode != bindparam("ok"))),
)
_SET_MODE = update(F).where(F.c.provider == bindparam("p")).values(mode=bindparam("m"), calls=0)
_COUNT = update(F).where(F.c.provider == bindparam("p")).values(calls=F.c.calls + 1)
_CALLS = select(F.c.calls).where(F.c.provider == bindparam("p"))
_SENT = insert(W)
_NEWEST = select(func.max(W.c.id))
_PRUNE = delete(W).where(W.c.id <= bindparam("upto"))
_RECENT = select(W.c.provider, W.c.body).order_by(W.c.id.desc()).limit(bindparam("n"))


async def get(conn: AsyncConnection, provider: str, kind: str, key: str) -> tuple[str, int] | None:
    row = (await conn.execute(_GET, {"p": provider, "k": kind, "ky": key})).first()
    return None if row is None else (row.body, row.version)


async def find(
    conn: AsyncConnection, provider: str, kind: str, ref: str
) -> list[tuple[str, str, int]]:
    """(key, body, version) of the objects filed under `ref`, oldest first."""
    rows = await conn.execute(_FIND, {"p": provider, "k": kind, "r": ref})
    return [(row.key, row.body, row.version) for row in rows]


async def add_object(
    conn: AsyncConnection, provider: str, kind: str, key: str, ref: str | None, body: str
) -> None:
    """A new object; the transaction fails with a unique violation if it exists."""
    await write_behind(
        conn,
        _NEW_OBJECT,
        {"provider": provider, "kind": kind, "key": key, "ref": ref, "version": 1, "body": body},
    )


async def update_object(
    conn: AsyncConnection,
    provider: str,
    kind: str,
    key: str,
    ref: str | None,
    body: str,
    version: int,
) -> bool:
    """False if the object is no longer at `version`."""
    result = await conn.execute(
        _UPDATE, {"p": provider, "k": kind, "ky": key, "v": version, "b": body, "r": ref}
    )
    return bool(result.rowcount)


async def handle(conn: AsyncConnection, name: str) -> tuple[str, str, str] | None:
    row = (await conn.execute(_HANDLE, {"n": name})).first()
    return None if row is None else (row.provider, row.kind, row.key)


async def bind(
    conn: AsyncConnection, name: str, provider: str, kind: str, key: str, *, replace: bool
) -> None:
    """`name` leads to the object; unless `replace`, the transaction fails with a
    unique violation if it leads elsewhere already."""
    if replace:
        await unbind(conn, name)
    await write_behind(
        conn, _NEW_HANDLE, {"name": name, "provider": provider, "kind": kind, "key": key}
    )


async def unbind(conn: AsyncConnection, name: str) -> None:
    await conn.execute(_UNBIND, {"n": name})


async def answer(conn: AsyncConnection, provider: str, key: str) -> tuple[str, int, bytes] | None:
    row = (await conn.execute(_ANSWER, {"p": provider, "ky": key})).first()
    return None if row is None else (row.fingerprint, row.status, bytes(row.body))


async def store_answer(
    conn: AsyncConnection, provider: str, key: str, fingerprint: str, status: int, body: bytes
) -> None:
    """The transaction fails with a unique violation if the key has an answer already."""
    await write_behind(
        conn,
        _NEW_ANSWER,
        {
            "provider": provider,
            "key": key,
            "fingerprint": fingerprint,
            "status": status,
            "body": body,
        },
    )


async def only_if_healthy(conn: AsyncConnection, provider: str) -> None:
    """The transaction fails (`refused_by_fault`) if `provider` is in a fault mode."""
    await write_behind(
        conn, _ONLY_IF_HEALTHY, {"provider": provider, "gm": "guard", "p": provider, "ok": "ok"}
    )


def refused_by_fault(error: BaseException) -> bool:
    """Whether `error` is `only_if_healthy`'s refusal: no `calls` in a fault's row."""
    return refused_null(error, F.c.calls)


async def fault(conn: AsyncConnection, provider: str) -> str | None:
    mode: str | None = await conn.scalar(_MODE, {"p": provider})
    return mode


async def set_fault(conn: AsyncConnection, provider: str, mode: str) -> None:
    await conn.execute(
        insert_ignore(conn, F, ["provider"]), {"provider": provider, "mode": mode, "calls": 0}
    )
    await conn.execute(_SET_MODE, {"p": provider, "m": mode})


async def count_call(conn: AsyncConnection, provider: str) -> int:
    await conn.execute(_COUNT, {"p": provider})
    return int(await conn.scalar(_CALLS, {"p": provider}) or 0)


async def add_webhook(conn: AsyncConnection, provider: str, body: bytes, keep: int) -> None:
    """Remember a sent webhook, and only the last `keep` of them."""
    await conn.execute(_SENT, {"provider": provider, "body": body})
    newest = await conn.scalar(_NEWEST)
    await conn.execute(_PRUNE, {"upto": newest - keep})


async def recent_webhooks(conn: AsyncConnection, count: int) -> list[tuple[str, bytes]]:
    """(provider, body) of the last `count` webhooks sent, oldest first."""
    rows = (await conn.execute(_RECENT, {"n": count})).all()
    return [(row.provider, bytes(row.body)) for row in reversed(rows)]
