"""CLABE: Mexico's 18-digit standardised bank account number, and its check digit.

Layout: 3 digits bank (ABM code), 3 plaza, 11 account, 1 check digit. The check
digit weighs positions 1-17 by 3, 7, 1 repeating, keeps each product mod 10, and is
(10 - sum mod 10) mod 10 (cuenca-mx/clabe-python, `compute_control_digit`).
"""

from __future__ import annotations

from app.domain.banks import BANKS
from app.domain.errors import InvalidClabe

CLABE_LENGTH = 18
_WEIGHTS = (3, 7, 1)


def check_digit(first17: str) -> int:
    if len(first17) != CLABE_LENGTH - 1 or not first17.isascii() or not first17.isdigit():
        raise ValueError("check_digit needs the first 17 digits of a CLABE")
    total = sum(int(d) * _WEIGHTS[i % 3] % 10 for i, d in enumerate(first17)) % 10
    return (10 - total) % 10


def with_check_digit(first17: str) -> str:
    return first17 + str(check_digit(first17))


def validate_clabe(value: str, field: tuple[str, ...] | None = None) -> str:
    """The CLABE, or InvalidClabe saying what is wrong with it."""
    clabe = value.strip()
    if len(clabe) != CLABE_LENGTH or not clabe.isascii() or not clabe.isdigit():
        raise InvalidClabe(f"a CLABE is exactly {CLABE_LENGTH} digits; got {value!r}", field)
    if clabe[:3] not in BANKS:
        raise InvalidClabe(f"CLABE {clabe} names no known bank (code {clabe[:3]})", field)
    expected = check_digit(clabe[:17])
    if int(clabe[17]) != expected:
        raise InvalidClabe(
            f"CLABE {clabe} has a wrong check digit (expected {expected}); check for a typo",
            field,
        )
    return clabe


def is_valid_clabe(value: str) -> bool:
    try:
        validate_clabe(value)
    except InvalidClabe:
        return False
    return True


def bank_name(clabe: str) -> str:
    return BANKS.get(clabe[:3], ("", "Unknown bank"))[1]


def institution_code(clabe: str) -> str:
    """The 5-digit Banxico institution code SPEI orders use for this CLABE's bank."""
    return BANKS[clabe[:3]][0]
