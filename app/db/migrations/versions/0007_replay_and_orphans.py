"""attempt search schedule, refunds of extra charges

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_NULL = sa.text("search_after IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("provider_payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_after", app.db.types.UTCDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_provider_payments_search_after"),
            ["search_after"],
            unique=False,
            sqlite_where=NOT_NULL,
            postgresql_where=NOT_NULL,
        )
    # Attempts already marked failed or unknown may hide a charge (an idempotency
    # mismatch used to be taken for a refusal): have reconciliation search for them.
    op.execute(
        "UPDATE provider_payments SET search_after = updated_at "
        "WHERE status IN ('error', 'unknown')"
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charge_ref", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("charge_ref")
    with op.batch_alter_table("provider_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_payments_search_after"))
        batch_op.drop_column("search_after")
