"""SPEI payouts and their attempts; audit events may belong to a payout

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("clabe", sa.String(length=18), nullable=False),
        sa.Column("bank", sa.String(length=60), nullable=False),
        sa.Column("beneficiary_name", sa.String(length=60), nullable=False),
        sa.Column("concept", sa.String(length=60), nullable=False),
        sa.Column("reference", sa.Integer(), nullable=False),
        sa.Column("rfc", sa.String(length=18), nullable=True),
        sa.Column("tracking_key", sa.String(length=30), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_ref", sa.String(length=100), nullable=True),
        sa.Column("return_code", sa.String(length=4), nullable=True),
        sa.Column("return_message", sa.Text(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", app.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(), nullable=False),
        sa.Column("paid_at", app.db.types.UTCDateTime(), nullable=True),
        sa.Column("lease_until", app.db.types.UTCDateTime(), nullable=True),
        sa.Column("checked_at", app.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payouts_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("tracking_key", name=op.f("uq_payouts_tracking_key")),
    )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payouts_merchant_id_created_at_id"),
            ["merchant_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_payouts_merchant_id_status_created_at"),
            ["merchant_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_payouts_provider_provider_ref"), ["provider", "provider_ref"]
        )
        batch_op.create_index(batch_op.f("ix_payouts_status_updated_at"), ["status", "updated_at"])
    op.create_table(
        "payout_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("wire", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_payout_attempts_payout_id_payouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_attempts")),
    )
    with op.batch_alter_table("payout_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payout_attempts_payout_id"), ["payout_id"])
    # A payout's audit events join the merchant's chain under the payout's id.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_events_intent_id_payment_intents", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_audit_events_intent_id_payment_intents",
            "payment_intents",
            ["intent_id"],
            ["id"],
        )
    with op.batch_alter_table("payout_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_attempts_payout_id"))
    op.drop_table("payout_attempts")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payouts_status_updated_at"))
        batch_op.drop_index(batch_op.f("ix_payouts_provider_provider_ref"))
        batch_op.drop_index(batch_op.f("ix_payouts_merchant_id_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_payouts_merchant_id_created_at_id"))
    op.drop_table("payouts")
