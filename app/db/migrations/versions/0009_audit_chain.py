"""audit chain: seq, prev_hash and hash on audit events, a chain head per merchant

Events written before this are chained here, per merchant in the order they were
written (by id), exactly as the code chains new ones (app/domain/audit_chain.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types
from app.domain import audit_chain

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1_000


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_audit_chain_heads_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_audit_chain_heads")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.BigInteger),
        sa.column("merchant_id", sa.String),
        sa.column("intent_id", sa.String),
        sa.column("type", sa.String),
        sa.column("status", sa.String),
        sa.column("provider", sa.String),
        sa.column("data", sa.JSON),
        sa.column("at", app.db.types.UTCDateTime),
        sa.column("seq", sa.BigInteger),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    heads = sa.table(
        "audit_chain_heads",
        sa.column("merchant_id", sa.String),
        sa.column("seq", sa.BigInteger),
        sa.column("hash", sa.String),
    )
    link = (
        events.update()
        .where(events.c.id == sa.bindparam("event_id"))
        .values(
            seq=sa.bindparam("new_seq"),
            prev_hash=sa.bindparam("new_prev"),
            hash=sa.bindparam("new_hash"),
        )
    )
    merchants = {row[0] for row in conn.execute(sa.text("SELECT id FROM merchants"))}
    with_events = {
        row[0] for row in conn.execute(sa.text("SELECT DISTINCT merchant_id FROM audit_events"))
    }
    for merchant_id in sorted(merchants | with_events):
        seq, prev, last_id = 0, audit_chain.GENESIS, -1
        while True:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.merchant_id == merchant_id, events.c.id > last_id)
                .order_by(events.c.id)
                .limit(BATCH)
            ).all()
            updates = []
            for row in rows:
                seq += 1
                new_hash = audit_chain.link(
                    prev,
                    audit_chain.canonical(
                        merchant_id=merchant_id,
                        intent_id=row.intent_id,
                        seq=seq,
                        type=row.type,
                        status=row.status,
                        provider=row.provider,
                        at=row.at,
                        data=row.data,
                    ),
                )
                updates.append(
                    {"event_id": row.id, "new_seq": seq, "new_prev": prev, "new_hash": new_hash}
                )
                prev = new_hash
            if updates:
                conn.execute(link, updates)
            if len(rows) < BATCH:
                break
            last_id = rows[-1].id
        if merchant_id in merchants:  # a head needs its merchant's row
            conn.execute(heads.insert().values(merchant_id=merchant_id, seq=seq, hash=prev))

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_merchant_id_seq"), ["merchant_id", "seq"]
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_merchant_id_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("audit_chain_heads")
