"""Every mapping of the intent covers every field of its declaration (the dataclass):
the table's columns, the GraphQL type, a merchant webhook's object."""

from __future__ import annotations

import dataclasses

from app.db.repositories import intents as intent_rows
from app.db.tables import PaymentIntentRow
from app.domain.intents import INTERNAL_FIELDS, PaymentIntent
from app.services.auth import KeyKind, Principal
from app.services.webhook_events import intent_json
from resolvers.types.intent import PaymentIntent as GraphQLIntent
from tests.domain.test_plain import LATER, NOW, field_names, full_intent

# Columns that are the row's bookkeeping, not the intent's.
BOOKKEEPING = {"lease_until", "checked_at"}
# The GraphQL type's own: resolvers (the audit trail, the refunds, the checkout link)
# and whom it was presented for.
GRAPHQL_ONLY = {"events", "refunds", "owner_view", "checkout_url", "client_secret_of"}


def test_every_column_is_a_field_and_every_field_a_column():
    columns = {c.name for c in PaymentIntentRow.__table__.c} - BOOKKEEPING
    row = intent_rows._values(full_intent())
    assert set(row) == columns
    assert set(row) == field_names(PaymentIntent) - {"amount"} | {"amount", "currency"}


def test_a_row_round_trips_with_datetimes_as_they_are():
    row = intent_rows._values(full_intent())
    assert row["created_at"] is NOW and row["expires_at"] is LATER
    assert intent_rows.from_row(row) == full_intent()


def test_graphql_shows_every_field_but_the_internal_ones():
    presented = {f.name for f in dataclasses.fields(GraphQLIntent)} - GRAPHQL_ONLY
    assert presented == field_names(PaymentIntent) - set(INTERNAL_FIELDS)


def test_the_owner_sees_every_public_field_filled():
    intent = full_intent()
    owner = Principal(merchant_id="acct_1", kind=KeyKind.SECRET)
    presented = GraphQLIntent.from_domain(intent, owner)
    for name in field_names(PaymentIntent) - set(INTERNAL_FIELDS):
        assert getattr(presented, name) is not None, name


def test_a_merchant_webhook_has_the_graphql_fields():
    """The object of an event is the intent as the API shows its owner, minus the
    client secret (shown by the API only) and the audit trail (a query of its own)."""
    graphql = {
        name.split("_")[0] + "".join(w.title() for w in name.split("_")[1:])
        for name in {f.name for f in dataclasses.fields(GraphQLIntent)} - GRAPHQL_ONLY
    }
    body = intent_json(full_intent())
    assert set(body) == graphql - {"clientSecret"} | {"object"}
    assert body["amountRefunded"] == {"amount": "10.00", "currency": "MXN"}
    assert body["expiresAt"] == "2026-11-28T09:30:00+00:00"
