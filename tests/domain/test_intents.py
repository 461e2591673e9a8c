from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.domain.errors import InvalidState
from app.domain.intents import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    PaymentIntent,
    PaymentIntentStatus,
    can_transition,
    is_final,
)
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money

S = PaymentIntentStatus
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def intent(status: PaymentIntentStatus = S.REQUIRES_PAYMENT_METHOD) -> PaymentIntent:
    zero = Money(0, Currency.MXN)
    return PaymentIntent(
        id="pi_1",
        merchant_id="acct_1",
        status=status,
        version=1,
        amount=Money(50_000, Currency.MXN),
        amount_received=zero,
        amount_refunded=zero,
        client_secret="pi_1_secret_x",
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("target", list(S))
def test_final_statuses_are_final(final, target):
    assert is_final(final)
    assert not can_transition(final, target)
    with pytest.raises(InvalidState):
        intent(final).moved_to(target, NOW)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_ACTION),
        (S.REQUIRES_PAYMENT_METHOD, S.SUCCEEDED),
        (S.REQUIRES_PAYMENT_METHOD, S.FAILED),
        (S.REQUIRES_PAYMENT_METHOD, S.CANCELED),
        (S.REQUIRES_ACTION, S.PROCESSING),
        (S.REQUIRES_ACTION, S.SUCCEEDED),
        (S.REQUIRES_ACTION, S.EXPIRED),
        (S.REQUIRES_ACTION, S.CANCELED),
        (S.PROCESSING, S.SUCCEEDED),
        (S.PROCESSING, S.FAILED),
    ],
)
def test_allowed_moves(current, target):
    assert can_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        # Nothing goes backwards: a late "processing" must not undo "requires action"...
        (S.REQUIRES_ACTION, S.REQUIRES_PAYMENT_METHOD),
        (S.PROCESSING, S.REQUIRES_ACTION),
        (S.PROCESSING, S.REQUIRES_PAYMENT_METHOD),
        # ...money in flight cannot be canceled or expire.
        (S.PROCESSING, S.CANCELED),
        (S.PROCESSING, S.EXPIRED),
        # and a status is not a change.
        (S.REQUIRES_ACTION, S.REQUIRES_ACTION),
    ],
)
def test_forbidden_moves(current, target):
    assert not can_transition(current, target)


def test_every_status_has_a_row_in_the_table():
    assert set(ALLOWED_TRANSITIONS) == set(S)


def test_a_move_bumps_the_version_by_one_and_stamps_the_time():
    later = datetime(2026, 11, 28, tzinfo=UTC)
    moved = intent().moved_to(S.SUCCEEDED, later, provider="stripe")
    assert (moved.status, moved.version, moved.updated_at, moved.provider) == (
        S.SUCCEEDED,
        2,
        later,
        "stripe",
    )


def test_allowed_methods_empty_means_all():
    assert intent().allows(PaymentMethodType.OXXO)
    card_only = replace(intent(), allowed_methods=(PaymentMethodType.CARD,))
    assert card_only.allows(PaymentMethodType.CARD)
    assert not card_only.allows(PaymentMethodType.OXXO)
