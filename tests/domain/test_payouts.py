"""Payout fields as SPEI takes them, and the payout's status machine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.clabe import bank_name, validate_clabe
from app.domain.errors import (
    InvalidClabe,
    InvalidConcept,
    InvalidInput,
    InvalidReference,
    InvalidState,
)
from app.domain.ids import new_id
from app.domain.money import Currency, Money
from app.domain.payouts import (
    MAX_TRACKING_KEY,
    PAYOUT_TRANSITIONS,
    Payout,
    PayoutStatus,
    is_final_payout,
    reference_for,
    return_reason,
    tracking_key_for,
    validate_beneficiary,
    validate_concept,
    validate_reference,
    validate_rfc,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
P = PayoutStatus


def payout(status: PayoutStatus = P.PENDING) -> Payout:
    return Payout(
        id="po_x",
        merchant_id="m",
        status=status,
        version=1,
        amount=Money(10_000, Currency.MXN),
        clabe="002010077777777771",
        bank="Banamex",
        beneficiary_name="ANA",
        concept="PAGO",
        reference=1,
        tracking_key="CBpox",
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    "clabe", ["012180004643051249", "002010077777777771", "646180110400000007"]
)
def test_published_clabes_pass_with_their_bank(clabe):
    assert validate_clabe(clabe) == clabe
    assert bank_name("646180110400000007") == "STP"


@pytest.mark.parametrize(
    "clabe",
    [
        "002000000000000007",  # check digit should be 8
        "000000000000000000",  # checksum passes, no bank 000
        "00201007777777777",  # 17 digits
        "0020100777777777\uff171",  # a full-width digit
    ],
)
def test_bad_clabes_are_invalid(clabe):
    with pytest.raises(InvalidClabe):
        validate_clabe(clabe)


def test_concept_is_spei_text_of_at_most_40_characters():
    assert validate_concept("  Pago   factura 123/A  ") == "Pago factura 123/A"
    assert validate_concept("x" * 40) == "x" * 40
    for bad in ["", "   ", "x" * 41, "Pago de señal", "café", "bell\x07", "emoji 💸", "a<b>"]:
        with pytest.raises(InvalidConcept):
            validate_concept(bad)


@pytest.mark.parametrize("good", [1, 42, 9_999_999])
def test_reference_in_range(good):
    assert validate_reference(good) == good


@pytest.mark.parametrize("bad", [0, -1, 10_000_000, True])
def test_reference_out_of_range(bad):
    with pytest.raises(InvalidReference):
        validate_reference(bad)


def test_generated_reference_is_in_range_and_stable():
    ids = [new_id("po") for _ in range(500)]
    refs = [reference_for(i) for i in ids]
    assert all(1 <= r <= 9_999_999 for r in refs)
    assert refs == [reference_for(i) for i in ids]


def test_tracking_key_is_alphanumeric_unique_and_short():
    ids = [new_id("po") for _ in range(500)]
    keys = [tracking_key_for(i) for i in ids]
    assert len(set(keys)) == len(keys)
    assert all(k.isascii() and k.isalnum() and len(k) <= MAX_TRACKING_KEY for k in keys)
    assert tracking_key_for("po_" + "a" * 64) == tracking_key_for("po_" + "a" * 64)
    assert len(tracking_key_for("po_" + "a" * 64)) == MAX_TRACKING_KEY


def test_beneficiary_and_rfc():
    assert validate_beneficiary(" Ana  López ") == "Ana López"
    assert validate_rfc("gode561231gr8") == "GODE561231GR8"
    assert validate_rfc("ABC680524P76") == "ABC680524P76"
    assert validate_rfc(None) is None
    for bad_name in ["", "x" * 41, "a\x00b"]:
        with pytest.raises(InvalidInput):
            validate_beneficiary(bad_name)
    with pytest.raises(InvalidInput):
        validate_rfc("NOTANRFC")


def test_returned_may_follow_paid_and_final_statuses_are_final():
    paid = payout().moved_to(P.IN_TRANSIT, NOW).moved_to(P.PAID, NOW)
    returned = paid.moved_to(P.RETURNED, NOW, return_reason=return_reason(3))
    assert (returned.version, returned.return_reason.code) == (4, "03")
    assert returned.return_reason.message == "account canceled"
    assert not is_final_payout(P.PAID)
    for status in (P.RETURNED, P.FAILED, P.CANCELED):
        assert is_final_payout(status)
        for target in PayoutStatus:
            with pytest.raises(InvalidState):
                payout(status).moved_to(target, NOW)


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        (P.PENDING, P.CANCELED, True),
        (P.IN_TRANSIT, P.CANCELED, False),
        (P.PENDING, P.PAID, False),
        (P.PAID, P.FAILED, False),
        (P.IN_TRANSIT, P.RETURNED, True),
    ],
)
def test_transitions(start, target, allowed):
    assert (target in PAYOUT_TRANSITIONS[start]) is allowed
    if not allowed:
        with pytest.raises(InvalidState):
            payout(start).moved_to(target, NOW)


def test_return_reasons_read_like_spei():
    assert return_reason("1").code == "01"
    assert return_reason("01").message == "account does not exist"
    assert return_reason("99").message == "returned by the receiving bank"
