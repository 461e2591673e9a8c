"""persisted_queries: GraphQL documents by SHA-256 (automatic persisted queries)

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persisted_queries",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_persisted_queries")),
    )
    with op.batch_alter_table("persisted_queries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_persisted_queries_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("persisted_queries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_persisted_queries_created_at"))
    op.drop_table("persisted_queries")
