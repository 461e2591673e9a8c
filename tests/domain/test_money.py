import pytest

from app.domain.errors import InvalidAmount, UnsupportedCurrency
from app.domain.money import MAX_MINOR, Currency, Money, parse_amount, parse_currency


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("500.00", 50_000),
        ("500", 50_000),
        ("0.01", 1),
        ("10.5", 1_050),
        ("00012.30", 1_230),
        (500, 50_000),
        ("10000000000.00", MAX_MINOR),
    ],
)
def test_parses_decimal_strings_and_integers_into_exact_minor_units(text, minor):
    assert parse_amount(text, Currency.MXN) == Money(minor, Currency.MXN)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("-1", "negative"),
        (-5, "negative"),
        ("1.001", "more than 2 decimals"),
        ("500.000", "more than 2 decimals"),
        ("abc", "not a number"),
        ("", "not a number"),
        ("1e3", "not a number"),
        ("1,000.00", "not a number"),
        ("١٢", "not a number"),  # Arabic-Indic digits are digits to Python, not to us
        ("NaN", "not a number"),
        ("10000000000.01", "too large"),
        ("9" * 40, "too long"),
        (1.5, "not a float"),
        (True, "not a float"),
        (None, "decimal string"),
        ({"amount": 1}, "decimal string"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
    ],
)
def test_refuses_bad_amounts_with_a_message_that_says_why(value, fragment):
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(value, Currency.MXN)
    assert fragment in caught.value.message
    assert caught.value.code == "INVALID_AMOUNT"


def test_zero_is_allowed_only_when_asked_for():
    assert parse_amount("0", Currency.MXN, allow_zero=True) == Money(0, Currency.MXN)


@pytest.mark.parametrize(
    ("minor", "text"), [(0, "0.00"), (1, "0.01"), (50_000, "500.00"), (-150, "-1.50")]
)
def test_formats_as_a_decimal_string(minor, text):
    assert Money(minor, Currency.MXN).to_decimal_string() == text


def test_round_trips_through_text():
    for minor in (1, 99, 100, 12_345, 99_999_999):
        money = Money(minor, Currency.USD)
        assert parse_amount(money.to_decimal_string(), Currency.USD) == money


def test_arithmetic_refuses_to_mix_currencies():
    assert Money(100, Currency.MXN) + Money(50, Currency.MXN) == Money(150, Currency.MXN)
    with pytest.raises(ValueError, match="cannot mix"):
        Money(100, Currency.MXN) + Money(50, Currency.USD)


def test_minor_units_must_be_an_int() -> None:
    with pytest.raises(TypeError):
        Money(1.5, Currency.MXN)  # type: ignore[arg-type]


def test_currency_parsing():
    assert parse_currency("mxn") is Currency.MXN
    with pytest.raises(UnsupportedCurrency):
        parse_currency("EUR")
