"""One declaration per concept: a dataclass is the only list of its fields.

Its plain forms (JSON, database row, public payload) follow it: these tests show a
field added to a dataclass reaching every form without another edit, pin the stored
formats, and check that a field no form can hold is refused when it is declared.
tests/test_intent_declaration.py holds the table and the GraphQL type to the intent.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime

import pytest

from app.domain.cards import CaptureMethod
from app.domain.codec import RULES, intent_from_dict, intent_to_dict
from app.domain.intents import INTERNAL_FIELDS, PaymentError, PaymentIntent, PaymentIntentStatus
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import NextAction, SpeiInstructions
from app.domain.plain import Codec, MoneyForm, Times
from providers.base import PaymentRequest, ProviderEvent, ProviderStatus

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def full_intent() -> PaymentIntent:
    """An intent with every field set to something other than its default."""
    return PaymentIntent(
        id="pi_1",
        merchant_id="acct_1",
        status=PaymentIntentStatus.REQUIRES_ACTION,
        version=3,
        amount=Money(50_000, Currency.MXN),
        amount_received=Money(20_000, Currency.MXN),
        amount_refunded=Money(1_000, Currency.MXN),
        client_secret="pi_1_secret_x",
        created_at=NOW,
        updated_at=LATER,
        method=PaymentMethodType.SPEI,
        provider="stp",
        description="Tacos",
        metadata={"order": "A-1", "lines": [1, 2]},
        allowed_methods=(PaymentMethodType.SPEI, PaymentMethodType.CARD),
        next_action=SpeiInstructions("646180110400000007", "STP", "Cobro", "1234567", LATER),
        last_error=PaymentError("PAYMENT_FAILED", "no", "stp"),
        expires_at=LATER,
        installments=6,
        capture_method=CaptureMethod.MANUAL,
        amount_capturable=Money(30_000, Currency.MXN),
        capture_before=LATER,
    )


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_field_is_set_in_the_sample():
    intent = full_intent()
    for field in dataclasses.fields(PaymentIntent):
        assert getattr(intent, field.name) != field.default, field.name


def test_the_json_form_is_the_stored_format():
    """Outbox rows, broker messages and stored mutation results hold this exact shape:
    a change to it must be deliberate (old rows are read back for 7 days)."""
    assert intent_to_dict(full_intent()) == {
        "id": "pi_1",
        "merchant_id": "acct_1",
        "status": "REQUIRES_ACTION",
        "version": 3,
        "currency": "MXN",
        "amount": 50_000,
        "amount_received": 20_000,
        "amount_refunded": 1_000,
        "client_secret": "pi_1_secret_x",
        "created_at": "2026-11-27T12:00:00+00:00",
        "updated_at": "2026-11-28T09:30:00+00:00",
        "method": "SPEI",
        "provider": "stp",
        "description": "Tacos",
        "metadata": {"order": "A-1", "lines": [1, 2]},
        "allowed_methods": ["SPEI", "CARD"],
        "next_action": {
            "type": "spei_instructions",
            "clabe": "646180110400000007",
            "bank": "STP",
            "beneficiary": "Cobro",
            "reference": "1234567",
            "expires_at": "2026-11-28T09:30:00+00:00",
        },
        "last_error": {"code": "PAYMENT_FAILED", "message": "no", "provider": "stp"},
        "expires_at": "2026-11-28T09:30:00+00:00",
        "installments": 6,
        "capture_method": "MANUAL",
        "amount_capturable": 30_000,
        "capture_before": "2026-11-28T09:30:00+00:00",
    }
    assert intent_from_dict(intent_to_dict(full_intent())) == full_intent()


def test_older_json_without_later_fields_still_reads():
    plain = intent_to_dict(full_intent())
    for name in ("method", "provider", "description", "metadata", "allowed_methods"):
        del plain[name]
    for name in ("next_action", "last_error", "expires_at"):
        plain[name] = None
    intent = intent_from_dict(plain)
    assert intent.allowed_methods == () and intent.method is None and intent.next_action is None


def test_json_from_before_cards_reads_with_nothing_held_in_the_intents_currency():
    plain = intent_to_dict(replace_currency(full_intent(), Currency.USD))
    for name in ("installments", "capture_method", "amount_capturable", "capture_before"):
        del plain[name]
    intent = intent_from_dict(plain)
    assert (intent.installments, intent.capture_method, intent.capture_before) == (
        None,
        CaptureMethod.AUTOMATIC,
        None,
    )
    assert intent.amount_capturable == Money(0, Currency.USD)


def replace_currency(intent: PaymentIntent, currency: Currency) -> PaymentIntent:
    def moved(money: Money) -> Money:
        return Money(money.minor, currency)

    return dataclasses.replace(
        intent,
        amount=moved(intent.amount),
        amount_received=moved(intent.amount_received),
        amount_refunded=moved(intent.amount_refunded),
        amount_capturable=moved(intent.amount_capturable),
    )


class Risk(enum.StrEnum):
    LOW = "low"
    HIGH = "high"


@dataclasses.dataclass(frozen=True, slots=True)
class Extended(PaymentIntent):
    """The intent with two fields more, as a developer would add them."""

    risk: Risk | None = None
    reviewed_at: datetime | None = None


def test_a_field_added_to_the_declaration_reaches_every_plain_form():
    extended = Extended(
        **{f.name: getattr(full_intent(), f.name) for f in dataclasses.fields(PaymentIntent)},
        risk=Risk.HIGH,
        reviewed_at=LATER,
    )
    as_json = Codec(Extended, rules=RULES)
    assert as_json.to_plain(extended)["risk"] == "high"
    assert as_json.to_plain(extended)["reviewed_at"] == LATER.isoformat()
    assert as_json.from_plain(as_json.to_plain(extended)) == extended

    as_row = Codec(Extended, rules=RULES, times=Times.NATIVE, complete=True)
    assert as_row.to_plain(extended)["reviewed_at"] is LATER
    assert as_row.from_plain(as_row.to_plain(extended)) == extended

    public = Codec(
        Extended, rules=RULES, money=MoneyForm.DECIMAL, exclude=INTERNAL_FIELDS, key=str.upper
    )
    assert public.to_plain(extended)["RISK"] == "high"
    assert "MERCHANT_ID" not in public.to_plain(extended)
    with pytest.raises(TypeError):
        public.from_plain({})

    older = as_json.to_plain(extended)
    del older["risk"], older["reviewed_at"]
    assert as_json.from_plain(older) == dataclasses.replace(extended, risk=None, reviewed_at=None)


def test_a_field_of_a_type_with_no_plain_form_is_refused_when_declared():
    @dataclasses.dataclass(frozen=True)
    class Odd:
        when: datetime
        amount: float

    with pytest.raises(TypeError, match=r"Odd\.amount"):
        Codec(Odd)


def test_an_optional_amount_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Odd:
        amount: Money | None = None

    with pytest.raises(TypeError, match="optional amount"):
        Codec(Odd)


def test_a_tagged_union_goes_by_its_rule():
    @dataclasses.dataclass(frozen=True)
    class Holder:
        action: NextAction

    holder = Holder(SpeiInstructions("646180110400000007", "STP", "Cobro", "1"))
    plain = Codec(Holder, rules=RULES).to_plain(holder)
    assert plain["action"]["type"] == "spei_instructions"
    assert Codec(Holder, rules=RULES).from_plain(plain) == holder


def test_a_payment_request_round_trips_and_reads_older_attempts():
    request = PaymentRequest(
        intent_id="pi_1",
        amount=Money(1_234, Currency.MXN),
        method=PaymentMethodType.OXXO,
        description="Tacos",
        customer_name="Ana",
        customer_email="ana@example.test",
        expires_at=LATER,
        expires_in_days=3,
        reference_number=7,
        return_url="https://example.test/back",
        attempt_id="pp_1",
    )
    stored = request.to_dict()
    assert stored["amount"] == 1_234 and stored["currency"] == "MXN"
    assert stored["expires_at"] == LATER.isoformat() and stored["method"] == "OXXO"
    # A request's tokens for each PSP are not kept: an attempt keeps its own PSP's.
    assert set(stored) == field_names(PaymentRequest) - {"card_tokens"} | {"currency"}
    assert PaymentRequest.from_dict({**stored, "wire": {"ignored": True}}) == request
    del stored["return_url"], stored["attempt_id"]  # attempts stored before these existed
    assert PaymentRequest.from_dict(stored) == dataclasses.replace(
        request, return_url=None, attempt_id=None
    )


def test_a_provider_event_is_stored_without_its_raw_body():
    event = ProviderEvent(
        provider="stp",
        event_id="e1",
        type="abono",
        status=ProviderStatus.SUCCEEDED,
        lookup_key="646180110400000007",
        amount=5_000,
        occurred_at=NOW,
        intent_hint="pi_1",
        raw={"secret": "not kept"},
    )
    stored = event.to_dict()
    assert set(stored) == field_names(ProviderEvent) - {"raw"}
    assert stored["status"] == "succeeded" and stored["occurred_at"] == NOW.isoformat()
    assert ProviderEvent.from_dict(stored) == dataclasses.replace(event, raw={})
    stored["status"] = None
    assert ProviderEvent.from_dict(stored).status is None
