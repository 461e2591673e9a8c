"""The audit chain (contract section 10): every event links to its merchant's
previous one; `cobro audit verify` finds a row changed, deleted or inserted in the
database and names the first broken link; concurrent writers never fork it."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update

from app.db.engine import Database
from app.db.repositories import audit
from app.db.repositories.audit import NewAuditEvent
from app.db.tables import AuditChainHead, AuditEvent, PaymentIntentRow, Refund
from app.domain import audit_chain
from app.domain.methods import PaymentMethodType
from app.services.audit_trail import AuditTrail
from app.services.auth import Principal
from app.services.housekeeping import Housekeeping
from app.services.intents import CreateIntent
from app.services.payment_requests import CardOptions, ConfirmIntent
from app.services.refunds import RefundCommand
from tests.test_cli import run_cobro

T = AuditEvent.__table__
H = AuditChainHead.__table__


async def merchant(runtime) -> Principal:
    return await runtime.services.auth.principal_for("sk_test_dev")


async def pay(runtime, amount: str = "250.00") -> str:
    me = await merchant(runtime)
    services = runtime.services
    intent = (await services.intents.create(me, CreateIntent(amount=amount))).intent
    await services.confirm.confirm(
        me, ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    )
    return intent.id


async def rows(runtime) -> list:
    async with runtime.services.db.read() as conn:
        return (await conn.execute(select(T).order_by(T.c.seq))).all()


async def verify(runtime) -> tuple[int, str]:
    """(events checked, the first broken link's description or "")."""
    (report,) = await AuditTrail(runtime.services.db).verify(await merchant_id(runtime))
    return report.events, report.broken.describe() if report.broken else ""


async def merchant_id(runtime) -> str:
    return (await merchant(runtime)).merchant_id


async def tamper(runtime, statement) -> None:
    """Change the database behind the code's back (as someone with SQL access would)."""
    async with runtime.services.db.transaction() as conn:
        await conn.execute(statement)


async def test_payments_write_one_unbroken_chain_per_merchant(runtime):
    for _ in range(3):
        await pay(runtime)
    chain = await rows(runtime)
    assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
    assert len(chain) >= 12  # created, request, response, confirmed, succeeded, ...
    assert chain[0].prev_hash == audit_chain.GENESIS
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
    # Recomputed from the documented canonical form alone:
    first = chain[0]
    content = {
        "at": first.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": first.data,
        "intent_id": first.intent_id,
        "merchant_id": first.merchant_id,
        "provider": first.provider,
        "seq": 1,
        "status": first.status,
        "type": first.type,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert first.hash == hashlib.sha256(f"{'0' * 64}\n{text}".encode()).hexdigest()
    async with runtime.services.db.read() as conn:
        (head,) = await audit.heads(conn, first.merchant_id)
    assert (head.seq, head.hash) == (chain[-1].seq, chain[-1].hash)
    assert await verify(runtime) == (len(chain), "")


async def test_a_changed_row_is_found_and_named(runtime):
    await pay(runtime)
    await pay(runtime)
    victim = (await rows(runtime))[6]
    await tamper(runtime, update(T).where(T.c.id == victim.id).values(data={"amount": 1}))
    checked, broken = await verify(runtime)
    assert checked == 6
    assert f"ev_{victim.id} (seq 7)" in broken
    assert "content does not give its hash" in broken


async def test_a_changed_row_with_its_hash_recomputed_breaks_the_next_link(runtime):
    await pay(runtime)
    chain = await rows(runtime)
    victim = chain[2]
    forged = audit_chain.expected_hash(
        audit_chain.ChainedEvent(
            merchant_id=victim.merchant_id,
            intent_id=victim.intent_id,
            seq=victim.seq,
            type="intent.canceled",
            status=victim.status,
            provider=victim.provider,
            at=victim.at,
            data=victim.data,
            prev_hash=victim.prev_hash,
            hash="",
        )
    )
    await tamper(
        runtime,
        update(T).where(T.c.id == victim.id).values(type="intent.canceled", hash=forged),
    )
    checked, broken = await verify(runtime)
    assert checked == 3
    assert f"ev_{chain[3].id} (seq 4)" in broken
    assert "prev_hash" in broken


async def test_a_deleted_row_is_found(runtime):
    await pay(runtime)
    chain = await rows(runtime)
    await tamper(runtime, delete(T).where(T.c.id == chain[1].id))
    checked, broken = await verify(runtime)
    assert checked == 1
    assert "jumps from seq 1 to 3" in broken and "seq 2 missing" in broken


async def test_a_deleted_last_row_is_found_by_the_head(runtime):
    await pay(runtime)
    chain = await rows(runtime)
    await tamper(runtime, delete(T).where(T.c.id == chain[-1].id))
    checked, broken = await verify(runtime)
    assert checked == len(chain) - 1
    assert "last 1 event(s) were deleted" in broken


async def test_a_row_inserted_directly_is_found(runtime):
    intent_id = await pay(runtime)
    chain = await rows(runtime)
    last = chain[-1]
    # A well-formed link, even: the chain runs past the head the code keeps.
    event = audit_chain.ChainedEvent(
        merchant_id=last.merchant_id,
        intent_id=intent_id,
        seq=last.seq + 1,
        type="intent.refunded",
        status="SUCCEEDED",
        provider="stripe",
        at=last.at,
        data={"amount": 25000},
        prev_hash=last.hash,
        hash="",
    )
    values = {
        "merchant_id": event.merchant_id,
        "intent_id": event.intent_id,
        "seq": event.seq,
        "type": event.type,
        "status": event.status,
        "provider": event.provider,
        "at": event.at,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": audit_chain.expected_hash(event),
    }
    await tamper(runtime, insert(T).values(**values))
    checked, broken = await verify(runtime)
    assert checked == len(chain)
    assert f"seq {last.seq + 1}" in broken and "runs past its head" in broken


async def test_an_inserted_row_with_a_made_up_hash_is_found(runtime):
    intent_id = await pay(runtime)
    last = (await rows(runtime))[-1]
    await tamper(
        runtime,
        insert(T).values(
            merchant_id=last.merchant_id,
            intent_id=intent_id,
            seq=last.seq + 1,
            type="intent.refunded",
            status=None,
            provider=None,
            at=last.at,
            data=None,
            prev_hash=last.hash,
            hash="f" * 64,
        ),
    )
    _, broken = await verify(runtime)
    assert f"seq {last.seq + 1}" in broken and "content does not give its hash" in broken


async def test_a_failed_transaction_leaves_the_chain_as_it_was(runtime):
    await pay(runtime)
    before = await rows(runtime)
    intent_id = before[0].intent_id

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with runtime.services.db.transaction() as conn:
            await audit.append(
                conn,
                intent_id=intent_id,
                merchant_id=before[0].merchant_id,
                events=[NewAuditEvent("note")],
                at=runtime.services.clock.now(),
            )
            raise Boom
    await pay(runtime)
    after = await rows(runtime)
    assert after[: len(before)] == before
    assert await verify(runtime) == (len(after), "")


async def test_events_in_one_transaction_move_the_head_once(runtime):
    """Staged by each append, chained once at the end, in the order appended."""
    await pay(runtime)
    start = len(await rows(runtime))
    intent_id = (await rows(runtime))[0].intent_id
    me = await merchant_id(runtime)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    from sqlalchemy import event

    engine = (
        runtime.services.db._sqlite_writer
        if runtime.services.db.is_sqlite
        else (runtime.services.db.engine.sync_engine)
    )
    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with runtime.services.db.transaction() as conn:
            for name in ("a", "b", "c"):
                await audit.append(
                    conn,
                    intent_id=intent_id,
                    merchant_id=me,
                    events=[NewAuditEvent(name), NewAuditEvent(name + "2")],
                    at=runtime.services.clock.now(),
                )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    chain = await rows(runtime)
    assert [r.type for r in chain[start:]] == ["a", "a2", "b", "b2", "c", "c2"]
    head_statements = [s for s in statements if "audit_chain_heads" in s]
    if runtime.services.db.is_sqlite:
        assert len(head_statements) == 1 and head_statements[0].lstrip().startswith("UPDATE")
    else:  # the server links them at COMMIT: no round trip touches the head
        assert head_statements == []
    inserts = [s for s in statements if s.lstrip().startswith("INSERT INTO audit_events")]
    assert len(inserts) == 1
    assert await verify(runtime) == (len(chain), "")


async def test_event_content_that_looks_like_the_chain_links_the_same_on_both_databases(
    runtime,
):
    """PostgreSQL hashes in the server what Python split around `seq`
    (app/db/audit_link.py); `verify` recomputes every link in Python. Data holding
    its own "seq" and "status" keys, quotes, escapes and non-ASCII text must not
    move the split."""
    intent_id = await pay(runtime)
    me = await merchant_id(runtime)
    tricky = [
        {"seq": 0, "status": "x"},
        {"note": ',"seq":0,"status":"', "nested": {"seq": 0, "status": None, "type": "t"}},
        {"ñandú": 'pingüino \\ "cita" \n línea', "emoji": "💸", "n": 2**63 - 1},
        None,
    ]
    async with runtime.services.db.transaction() as conn:
        await audit.append(
            conn,
            intent_id=intent_id,
            merchant_id=me,
            events=[NewAuditEvent("tricky", status='a"b', provider="p\\q", data=d) for d in tricky],
            at=runtime.services.clock.now(),
        )
    chain = await rows(runtime)
    assert [r.data for r in chain[-4:]] == tricky
    assert all(r.link_prefix is None and r.link_suffix is None for r in chain)
    assert await verify(runtime) == (len(chain), "")


async def test_concurrent_writers_of_one_merchant_never_fork_the_chain(runtime):
    """On PostgreSQL these transactions really overlap (a pool of connections, and a
    second Database as another process would have); the head's row lock lines them
    up. Without it two would read the same head: the second would fail on the unique
    (merchant_id, seq), or the chain would fork."""
    me = await merchant(runtime)
    services = runtime.services
    intent_id = await pay(runtime)
    # (Not on SQLite: two writers in one event loop would wait on each other's lock.)
    other = (
        services.db
        if services.db.is_sqlite
        else Database(services.db.url.render_as_string(hide_password=False))
    )

    async def direct(n: int) -> None:
        async with (other if n % 2 else services.db).transaction() as conn:
            await audit.append(
                conn,
                intent_id=intent_id,
                merchant_id=me.merchant_id,
                events=[NewAuditEvent(f"w{n}"), NewAuditEvent(f"w{n}.2")],
                at=services.clock.now(),
            )
            await asyncio.sleep(0.002 * (n % 3))  # held open while others start

    async def through_the_api(n: int) -> None:
        for i in range(4):
            created = await services.intents.create(me, CreateIntent(amount=f"{10 + n}.{i:02d}"))
            if i % 2 == 0:
                await services.intents.cancel(me, created.intent.id)

    try:
        await asyncio.gather(
            *(direct(n) for n in range(40)), *(through_the_api(n) for n in range(12))
        )
    finally:
        if other is not services.db:
            await other.dispose()
    chain = await rows(runtime)
    assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
    assert sum(r.type.startswith("w") for r in chain) == 80
    assert sum(r.type == "intent.created" for r in chain) == 1 + 12 * 4
    assert await verify(runtime) == (len(chain), "")


# -- the commands, as an operator runs them ------------------------------------------


@pytest.mark.slow
async def test_cobro_audit_verify_exits_1_naming_the_first_broken_link(runtime, database_url):
    await pay(runtime)
    done = await asyncio.to_thread(run_cobro, "audit", "verify", db=database_url)
    assert done.returncode == 0, done.stderr
    assert "chain intact" in done.stdout
    chain = await rows(runtime)
    await tamper(runtime, update(T).where(T.c.id == chain[2].id).values(provider="conekta"))
    await tamper(runtime, delete(T).where(T.c.id == chain[4].id))
    done = await asyncio.to_thread(run_cobro, "audit", "verify", db=database_url)
    assert done.returncode == 1
    assert f"broken link at event ev_{chain[2].id} (seq 3)" in done.stderr
    assert "seq 5" not in done.stderr  # the first broken link, not every one


async def test_cobro_audit_verify_refuses_an_unknown_merchant(database_url, runtime):
    done = await asyncio.to_thread(
        run_cobro, "audit", "verify", "--merchant", "acct_nope", db=database_url
    )
    assert done.returncode == 2
    assert "no merchant acct_nope" in done.stderr


@pytest.mark.slow
async def test_cobro_audit_export_writes_json_lines_for_a_date_range(
    runtime, database_url, tmp_path
):
    await pay(runtime)
    chain = await rows(runtime)
    me = chain[0].merchant_id
    day = chain[0].at.date().isoformat()
    target = tmp_path / "audit.jsonl"
    done = await asyncio.to_thread(
        run_cobro,
        "audit",
        "export",
        "--merchant",
        me,
        "--from",
        day,
        "--to",
        day,
        "--output",
        str(target),
        db=database_url,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [r.seq for r in chain]
    assert lines[0]["hash"] == chain[0].hash and lines[0]["prev_hash"] == audit_chain.GENESIS
    assert lines[0]["at"].endswith("Z") and lines[0]["id"] == f"ev_{chain[0].id}"
    # Every link can be recomputed from the export alone.
    for line in lines:
        event = audit_chain.ChainedEvent(
            **{k: line[k] for k in ("merchant_id", "intent_id", "seq", "type", "status")},
            provider=line["provider"],
            data=line["data"],
            prev_hash=line["prev_hash"],
            hash=line["hash"],
            at=datetime.fromisoformat(line["at"]),
        )
        assert audit_chain.expected_hash(event) == line["hash"]
    # A range before the events: nothing; and to stdout.
    earlier = (chain[0].at - timedelta(days=3)).date().isoformat()
    done = await asyncio.to_thread(
        run_cobro,
        "audit",
        "export",
        "--merchant",
        me,
        "--from",
        earlier,
        "--to",
        earlier,
        db=database_url,
    )
    assert done.returncode == 0 and done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01", "--to", "2026-12-31"], "is not a date"),
        (["--from", "2026-01-01T00:00:00", "--to", "2026-12-31"], "has no offset"),
        (["--from", "2026-02-01", "--to", "2026-01-01"], "--from must be before --to"),
        (["--from", "yesterday", "--to", "2026-01-01"], "is not a date"),
    ],
)
async def test_cobro_audit_export_refuses_bad_dates_and_writes_nothing(
    runtime, database_url, tmp_path, args, message
):
    target = tmp_path / "out.jsonl"
    done = await asyncio.to_thread(
        run_cobro,
        "audit",
        "export",
        "--merchant",
        await merchant_id(runtime),
        *args,
        "--output",
        str(target),
        db=database_url,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert list(tmp_path.glob("out.jsonl*")) == []


async def test_cobro_audit_export_refuses_an_unknown_merchant(runtime, database_url, tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("kept\n")
    done = await asyncio.to_thread(
        run_cobro,
        "audit",
        "export",
        "--merchant",
        "acct_nope",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
        "--output",
        str(target),
        db=database_url,
    )
    assert done.returncode == 2 and "no merchant acct_nope" in done.stderr
    assert target.read_text() == "kept\n"
    assert list(tmp_path.glob("*.partial")) == []


async def test_housekeeping_keeps_intents_events_and_refunds_for_ten_years(runtime):
    services = runtime.services
    intent_id = await pay(runtime)
    await services.refunds.refund(await merchant(runtime), RefundCommand(intent_id, "50.00"))
    counts_before = await counts(runtime)
    services.clock.advance(timedelta(days=365 * 10 - 1).total_seconds())
    await Housekeeping(services.db, services.clock, timedelta(days=7)).run_once()
    assert await counts(runtime) == counts_before
    assert (await verify(runtime))[1] == ""


async def counts(runtime) -> tuple[int, ...]:
    async with runtime.services.db.read() as conn:
        found = []
        for table in (T, PaymentIntentRow.__table__, Refund.__table__, H):
            found.append(int(await conn.scalar(select(func.count()).select_from(table))))
        return tuple(found)


async def test_a_head_moved_by_another_process_is_read_again(runtime):
    """A writer remembers the heads it moved (SQLite's one connection) and moves
    them from there; another process writing the same file meanwhile makes that
    miss, and the head is read afresh: no fork, no failure."""
    intent_id = await pay(runtime)
    me = await merchant_id(runtime)
    services = runtime.services
    other = Database(services.db.url.render_as_string(hide_password=False))

    async def note(db: Database, name: str) -> None:
        async with db.transaction() as conn:
            await audit.append(
                conn,
                intent_id=intent_id,
                merchant_id=me,
                events=[NewAuditEvent(name)],
                at=services.clock.now(),
            )

    try:
        for n in range(3):
            await note(services.db, f"here.{n}")
            await note(other, f"there.{n}")
    finally:
        await other.dispose()
    chain = await rows(runtime)
    assert [r.type for r in chain[-6:]] == [
        "here.0",
        "there.0",
        "here.1",
        "there.1",
        "here.2",
        "there.2",
    ]
    assert await verify(runtime) == (len(chain), "")
