"""On PostgreSQL's short path every statement of a card payment, the sandbox PSP's
included, runs as a kept statement once warm: one that could not be planned would
go through SQLAlchemy's execution on every payment, several times the Python (one
did: a parameter used twice in one statement)."""

from __future__ import annotations

import pytest

from app.domain.methods import PaymentMethodType
from app.services.intents import CreateIntent
from app.services.payment_requests import CardOptions, ConfirmIntent


async def pay(runtime) -> None:
    services = runtime.services
    me = await services.auth.principal_for("sk_test_dev")
    intent = (await services.intents.create(me, CreateIntent(amount="250.00"))).intent
    result = await services.confirm.confirm(
        me, ConfirmIntent(intent.id, PaymentMethodType.CARD, card=CardOptions("tok_visa"))
    )
    assert result.intent.status.value == "SUCCEEDED"


async def test_a_warm_card_payment_runs_no_statement_through_sqlalchemy(runtime) -> None:
    db = runtime.services.db
    if db.is_sqlite:
        pytest.skip("the count is PostgreSQL's short path's")
    await pay(runtime)  # statements seen once are planned when they run again
    await pay(runtime)
    before = db.unplanned_statements
    await pay(runtime)
    assert db.unplanned_statements == before
