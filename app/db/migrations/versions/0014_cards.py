"""cards: meses sin intereses and capture later on the intent; captures

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_intents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("installments", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "capture_method", sa.String(length=16), server_default="AUTOMATIC", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("amount_capturable", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("capture_before", app.db.types.UTCDateTime(), nullable=True))
    op.create_table(
        "card_captures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["intent_id"], ["payment_intents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("card_captures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_captures_intent_id"), ["intent_id"], unique=False)


def downgrade() -> None:
    op.drop_table("card_captures")
    with op.batch_alter_table("payment_intents", schema=None) as batch_op:
        batch_op.drop_column("capture_before")
        batch_op.drop_column("amount_capturable")
        batch_op.drop_column("capture_method")
        batch_op.drop_column("installments")
