"""What PSP news does to an intent: never backwards, deposits add up, late money kept."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.domain.intents import PaymentIntent, PaymentIntentStatus
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.settlement import PaymentNews, decide

S = PaymentIntentStatus
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def intent(status=S.REQUIRES_ACTION, method=PaymentMethodType.SPEI, received=0, provider="stp"):
    return PaymentIntent(
        id="pi_1",
        merchant_id="acct_1",
        status=status,
        version=2,
        amount=Money(50_000, Currency.MXN),
        amount_received=Money(received, Currency.MXN),
        amount_refunded=Money(0, Currency.MXN),
        client_secret="s",
        created_at=NOW,
        updated_at=NOW,
        method=method,
        provider=provider,
    )


def news(status=S.SUCCEEDED, amount=None, provider="stp"):
    return PaymentNews(status=status, amount=amount, provider=provider, detail="event")


def test_a_full_deposit_succeeds():
    decision = decide(intent(), news(amount=50_000), NOW)
    assert decision.intent.status is S.SUCCEEDED
    assert decision.intent.amount_received.minor == 50_000
    assert decision.intent.next_action is None


def test_deposits_add_up_and_an_overshoot_is_kept():
    partial = decide(intent(), news(amount=20_000), NOW)
    assert (partial.note, partial.intent.status) == ("payment.partial", S.REQUIRES_ACTION)
    paid = decide(partial.intent, news(amount=35_000), NOW)
    assert (paid.intent.status, paid.intent.amount_received.minor) == (S.SUCCEEDED, 55_000)


@pytest.mark.parametrize("amount", [None, 0])
def test_a_deposit_without_an_amount_credits_nothing(amount):
    decision = decide(intent(), news(amount=amount), NOW)
    assert decision.intent is None and decision.note == "webhook.ignored"


def test_a_card_or_voucher_payment_is_all_or_nothing():
    card = intent(method=PaymentMethodType.OXXO, provider="stripe")
    decision = decide(card, news(amount=None, provider="stripe"), NOW)
    assert decision.intent.amount_received.minor == 50_000


@pytest.mark.parametrize("final", [S.EXPIRED, S.CANCELED, S.SUCCEEDED, S.FAILED])
def test_a_second_transfer_after_a_final_status_is_recorded_as_late(final):
    done = intent(status=final, received=50_000 if final is S.SUCCEEDED else 0)
    decision = decide(done, news(amount=10_000), NOW)
    assert decision.note == "payment.late"
    assert decision.intent.status is final
    assert decision.intent.amount_received.minor == done.amount_received.minor + 10_000
    assert decision.intent.version == done.version + 1


def test_the_same_voucher_reported_twice_is_not_money_twice():
    paid = intent(
        status=S.SUCCEEDED, method=PaymentMethodType.OXXO, received=50_000, provider="stripe"
    )
    decision = decide(paid, news(amount=50_000, provider="stripe"), NOW)
    assert decision.intent is None


def test_a_voucher_paid_at_the_psp_that_lost_the_race_is_late_money():
    paid = intent(
        status=S.SUCCEEDED, method=PaymentMethodType.OXXO, received=50_000, provider="conekta"
    )
    decision = decide(paid, news(amount=50_000, provider="stripe"), NOW)
    assert (decision.note, decision.intent.amount_received.minor) == ("payment.late", 100_000)


@pytest.mark.parametrize(
    ("current", "reported"),
    [(S.SUCCEEDED, S.PROCESSING), (S.PROCESSING, S.REQUIRES_ACTION), (S.EXPIRED, S.FAILED)],
)
def test_news_never_moves_an_intent_backwards(current, reported):
    decision = decide(intent(status=current), news(status=reported), NOW)
    assert decision.intent is None
    assert "cannot become" in decision.reason or "already" in decision.reason


def test_a_failure_records_why():
    decision = decide(intent(), news(status=S.FAILED), NOW)
    assert decision.intent.status is S.FAILED
    assert decision.intent.last_error.code == "PAYMENT_FAILED"


def test_news_without_a_status_changes_nothing():
    assert decide(intent(), news(status=None), NOW).intent is None


def test_versions_grow_by_one():
    decision = decide(replace(intent(), version=7), news(amount=50_000), NOW)
    assert decision.intent.version == 8
