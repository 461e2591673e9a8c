"""sandbox state: the PSP emulators' objects, handles, idempotency answers, faults, webhooks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 23:22:37.441404
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_faults",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_sandbox_faults")),
    )
    op.create_table(
        "sandbox_handles",
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sandbox_handles")),
    )
    op.create_table(
        "sandbox_idempotency",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "key", name=op.f("pk_sandbox_idempotency")),
    )
    op.create_table(
        "sandbox_objects",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_objects")),
        sa.UniqueConstraint(
            "provider", "kind", "key", name=op.f("uq_sandbox_objects_provider_kind_key")
        ),
    )
    with op.batch_alter_table("sandbox_objects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sandbox_objects_provider_kind_ref"),
            ["provider", "kind", "ref"],
            unique=False,
        )

    op.create_table(
        "sandbox_webhooks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_webhooks")
    with op.batch_alter_table("sandbox_objects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_objects_provider_kind_ref"))

    op.drop_table("sandbox_objects")
    op.drop_table("sandbox_idempotency")
    op.drop_table("sandbox_handles")
    op.drop_table("sandbox_faults")
