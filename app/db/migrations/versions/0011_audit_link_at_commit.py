"""audit chain: PostgreSQL links events at COMMIT (app/db/audit_link.py)

An event is inserted with its canonical content split around its position
(`link_prefix`, `link_suffix`) and without seq, prev_hash and hash, which a
deferred trigger fills in as the transaction commits. A check keeps every row
either linked or awaiting its link. SQLite keeps linking in Python.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import audit_link

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_prefix", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("link_suffix", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_check_constraint(
            "linked_or_awaiting_link",
            "(seq IS NULL) = (link_prefix IS NOT NULL) AND (seq IS NULL) = (link_suffix IS NOT "
            "NULL) AND (seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (hash IS NULL)",
        )
    audit_link.install(op.get_bind())


def downgrade() -> None:
    audit_link.uninstall(op.get_bind())
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("linked_or_awaiting_link", type_="check")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("link_suffix")
        batch_op.drop_column("link_prefix")
