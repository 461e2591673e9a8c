"""idempotency in flight, refund keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 06:17:44.406742
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finished_at", app.db.types.UTCDateTime(), nullable=True))
    # Every key stored so far belonged to a finished request.
    op.execute("UPDATE idempotency_keys SET finished_at = created_at")

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("request_hash")
        batch_op.drop_column("client_key")

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
