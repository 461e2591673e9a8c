"""PostgreSQL links audit events into their merchant's chain at COMMIT, in the server.

A transaction that wrote audit events would otherwise hold its merchant's chain
head locked (FOR UPDATE) from reading it until its COMMIT came back: three round
trips and every wait of a busy event loop in between, while every other writer of
that merchant queued behind it. Here the writer inserts its events unlinked, with
their canonical content split around the one thing it cannot know yet, the
position (`link_prefix` + seq + `link_suffix` is app/domain/audit_chain.py's
canonical form). A deferred constraint trigger fires for each event as the
transaction commits, in insertion order: it locks the head, numbers and hashes the
event exactly as app/domain/audit_chain.py does, clears the split content and moves
the head. The head is then locked only for the commit itself.

SQLite does not need it (one writer at a time: app/db/repositories/audit.py links
events in Python); the statements run on PostgreSQL only, from the migration and
from `metadata.create_all` alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, event

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION cobro_link_audit_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq bigint;
    head_hash varchar(64);
    new_hash varchar(64);
BEGIN
    SELECT seq, hash INTO head_seq, head_hash
      FROM audit_chain_heads WHERE merchant_id = NEW.merchant_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit_chain_heads (merchant_id, seq, hash)
             VALUES (NEW.merchant_id, 0, repeat('0', 64))
        ON CONFLICT (merchant_id) DO NOTHING;
        SELECT seq, hash INTO head_seq, head_hash
          FROM audit_chain_heads WHERE merchant_id = NEW.merchant_id FOR UPDATE;
    END IF;
    head_seq := head_seq + 1;
    new_hash := encode(sha256(
        convert_to(head_hash || E'\\n', 'UTF8') || NEW.link_prefix
        || convert_to(head_seq::text, 'UTF8') || NEW.link_suffix), 'hex');
    UPDATE audit_events
       SET seq = head_seq, prev_hash = head_hash, hash = new_hash,
           link_prefix = NULL, link_suffix = NULL
     WHERE id = NEW.id;
    UPDATE audit_chain_heads SET seq = head_seq, hash = new_hash
     WHERE merchant_id = NEW.merchant_id;
    RETURN NULL;
END $$
"""

CREATE_TRIGGER = """
CREATE CONSTRAINT TRIGGER link_audit_event
    AFTER INSERT ON audit_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.link_prefix IS NOT NULL)
    EXECUTE FUNCTION cobro_link_audit_event()
"""

DROP = (
    "DROP TRIGGER IF EXISTS link_audit_event ON audit_events",
    "DROP FUNCTION IF EXISTS cobro_link_audit_event()",
)


def install(connection: Connection) -> None:
    """Create (or replace) the function and its trigger on PostgreSQL."""
    if connection.dialect.name == "postgresql":
        for statement in (CREATE_FUNCTION, *DROP[:1], CREATE_TRIGGER):
            connection.exec_driver_sql(statement)


def uninstall(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        for statement in DROP:
            connection.exec_driver_sql(statement)


def install_on_create(table: Table) -> None:
    """`metadata.create_all` creates the trigger with the table."""

    def created(_table: Table, connection: Connection, **_: Any) -> None:
        install(connection)

    event.listen(table, "after_create", created)
