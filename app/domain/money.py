"""Money in integer minor units; decimal strings only at the edges.

`parse_amount` is the one door from the outside world: it takes the decimal string
(or integer) a client sent and either returns exact minor units or raises
`InvalidAmount` with a message a person can act on. Floats are refused: they cannot
carry cents exactly.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from app.domain.errors import InvalidAmount, UnsupportedCurrency


class Currency(enum.StrEnum):
    MXN = "MXN"
    USD = "USD"


# Both supported currencies have two decimals (Stripe: MXN is not zero-decimal).
MINOR_DIGITS = {Currency.MXN: 2, Currency.USD: 2}

# The largest amount we accept anywhere: 10^12 minor units (ten billion pesos) is far
# beyond any single payment and keeps every sum well inside a 64-bit column.
MAX_MINOR = 10**12

# A client string longer than this is not an amount; refuse it before Decimal parses it.
MAX_AMOUNT_TEXT = 32


def parse_currency(value: str) -> Currency:
    try:
        return Currency(value.upper())
    except (ValueError, AttributeError):
        raise UnsupportedCurrency(
            f"currency {value!r} is not supported; use one of "
            + ", ".join(c.value for c in Currency)
        ) from None


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `minor` units (centavos, cents) of `currency`."""

    minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError("Money.minor must be an int")

    def to_decimal_string(self) -> str:
        digits = MINOR_DIGITS[self.currency]
        sign = "-" if self.minor < 0 else ""
        units, cents = divmod(abs(self.minor), 10**digits)
        return f"{sign}{units}.{cents:0{digits}d}"

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    @classmethod
    def zero(cls, currency: Currency) -> Money:
        return cls(0, currency)

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency.value}"


def parse_amount(
    value: object,
    currency: Currency,
    *,
    allow_zero: bool = False,
    field: tuple[str, ...] | None = None,
) -> Money:
    """Parse a client amount ("500.00", "500", 500) into exact minor units.

    Refuses floats, booleans, non-numbers, negatives, more decimals than the
    currency has, and absurd sizes, each with a message that says which, naming
    `field` as the input at fault.
    """
    try:
        return _parse_amount(value, currency, allow_zero)
    except InvalidAmount as error:
        error.field = field
        raise


def _parse_amount(value: object, currency: Currency, allow_zero: bool) -> Money:
    digits = MINOR_DIGITS[currency]
    if isinstance(value, bool | float):
        raise InvalidAmount(
            'amount must be a decimal string such as "500.00" (or an integer), not a float'
        )
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidAmount('amount must be a decimal string such as "500.00"')
    if len(text) > MAX_AMOUNT_TEXT:
        raise InvalidAmount(f"amount {text[:MAX_AMOUNT_TEXT]!r}... is too long to be an amount")
    if text.startswith("-") and _AMOUNT.fullmatch(text[1:]):
        raise InvalidAmount(f"amount {text!r} is negative; amounts must be positive")
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidAmount(f'amount {text!r} is not a number; send e.g. "500.00"')
    units, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > digits:
        raise InvalidAmount(
            f"amount {text!r} has more than {digits} decimals; "
            f"{currency.value} amounts go down to 0.{'0' * (digits - 1)}1"
        )
    minor = int(units) * 10**digits + int(fraction.ljust(digits, "0") or 0)
    if minor > MAX_MINOR:
        limit = Money(MAX_MINOR, currency).to_decimal_string()
        raise InvalidAmount(f"amount {text!r} is too large; the most we accept is {limit}")
    if minor == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    return Money(minor, currency)


# Plain digits with an optional fraction: no exponents, signs, spaces or separators.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def to_decimal(money: Money) -> Decimal:
    """The exact Decimal value, for arithmetic at FX boundaries (never for storage)."""
    return Decimal(money.minor).scaleb(-MINOR_DIGITS[money.currency])
