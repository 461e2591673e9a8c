"""rolling API keys and webhook secrets: last4, expiry, retiring secrets

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX_SHOWN = 12  # app/services/merchants.py KEY_PREFIX_SHOWN when these keys were made


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last4", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("expires_at", app.db.types.UTCDateTime(), nullable=True))
    # Only digests were kept; a key shorter than the stored prefix is its own prefix,
    # so its last four characters are known. Other keys made before this show "".
    keys = sa.table("api_keys", sa.column("id", sa.String), sa.column("key_prefix", sa.String))
    conn = op.get_bind()
    for key_id, prefix in conn.execute(sa.select(keys.c.id, keys.c.key_prefix)).all():
        last4 = prefix[-4:] if len(prefix) < PREFIX_SHOWN else ""
        conn.execute(
            sa.text("UPDATE api_keys SET last4 = :last4 WHERE id = :id"),
            {"last4": last4, "id": key_id},
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("last4", existing_type=sa.String(length=4), nullable=False)

    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retiring_secrets", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("retiring_secrets")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("last4")
