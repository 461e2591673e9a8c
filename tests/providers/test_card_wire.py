"""Cards the Mexican way in each PSP's own terms (contract section 7): the bytes an
adapter builds for installments and 3-D Secure, and the refusals it reads back."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from providers.base import (
    CARD_TOKEN_INVALID,
    INSTALLMENTS_UNAVAILABLE,
    PaymentRequest,
    ProviderConfig,
)
from providers.conekta import ConektaProvider
from providers.conekta import card_refusal as conekta_refusal
from providers.stripe import StripeProvider
from providers.stripe_wire import card_refusal as stripe_refusal

CONFIG = ProviderConfig(base_url="http://psp.invalid", api_key="k")


def card(**extra: object) -> PaymentRequest:
    return PaymentRequest(
        intent_id="pi_1",
        amount=Money(150_000, Currency.MXN),
        method=PaymentMethodType.CARD,
        card_token="tok_1",
        **extra,  # type: ignore[arg-type]
    )


def stripe_form(request: PaymentRequest) -> dict[str, str]:
    return dict(parse_qsl(StripeProvider(CONFIG).prepare_payment(request, "k1").body.decode()))


def conekta_json(request: PaymentRequest) -> dict:
    return json.loads(ConektaProvider(CONFIG).prepare_payment(request, "k1").body)


def test_stripe_takes_an_installment_plan_on_the_payment_method_options():
    form = stripe_form(card(installments=12))
    prefix = "payment_method_options[card][installments][plan]"
    assert (form[f"{prefix}[count]"], form[f"{prefix}[interval]"], form[f"{prefix}[type]"]) == (
        "12",
        "month",
        "fixed_count",
    )


def test_conekta_takes_monthly_installments_on_the_card():
    method = conekta_json(card(installments=12))["charges"][0]["payment_method"]
    assert method == {"type": "card", "token_id": "tok_1", "monthly_installments": 12}


def test_three_d_secure_required_in_each_psps_terms():
    assert stripe_form(card(require_three_d_secure=True))[
        "payment_method_options[card][request_three_d_secure]"
    ] == "any"  # fmt: skip
    assert conekta_json(card(require_three_d_secure=True))["three_ds_mode"] == "strict"


def test_automatic_three_d_secure_and_one_payment_leave_it_to_the_psp():
    assert not any(k.startswith("payment_method_options") for k in stripe_form(card()))
    order = conekta_json(card())
    assert "three_ds_mode" not in order
    assert "monthly_installments" not in order["charges"][0]["payment_method"]


def test_a_request_goes_to_each_psp_with_its_own_token():
    request = card(card_tokens=(("stripe", "tok_s"), ("conekta", "tok_test_c")))
    assert request.for_provider("stripe").card_token == "tok_s"
    assert request.for_provider("conekta").card_token == "tok_test_c"
    assert PaymentRequest.from_dict(card(installments=3).to_dict()).installments == 3


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            {"code": "resource_missing", "param": "payment_method_data[card][token]"},
            CARD_TOKEN_INVALID,
        ),
        ({"code": "resource_missing", "param": "payment_intent"}, None),
        ({"code": "installment_plan_unavailable"}, INSTALLMENTS_UNAVAILABLE),
    ],
)
def test_stripe_refusals_the_contract_names(error, code):
    assert stripe_refusal(error) == code


@pytest.mark.parametrize(
    ("detail", "code"),
    [
        ({"code": "conekta.errors.parameter_validation.token.not_found"}, CARD_TOKEN_INVALID),
        (
            {"code": "conekta.errors.parameter_validation.charge.monthly_installments.x"},
            INSTALLMENTS_UNAVAILABLE,
        ),
        ({"code": "conekta.errors.parameter_validation.currency"}, None),
    ],
)
def test_conekta_refusals_the_contract_names(detail, code):
    assert conekta_refusal(detail) == code
