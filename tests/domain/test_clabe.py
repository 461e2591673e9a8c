import pytest

from app.domain.clabe import (
    bank_name,
    check_digit,
    institution_code,
    is_valid_clabe,
    validate_clabe,
)
from app.domain.errors import InvalidClabe

# Worked examples from ../shared/reference/mexico-payments.md §1 and their sources.
VALID = [
    "002010077777777771",  # center-key/clabe-validator README (Banamex)
    "646180110400000007",  # cuenca-mx/stpmex-python README; Bitso docs (STP)
    "002000000000000008",  # clabe-python tests
    "072691004495711499",  # stpmex-python README (Banorte)
    "646180157029907065",  # cuenca-mx/speid README
    "012180004643051249",  # cuenca-mx/cep-python README (BBVA)
]


@pytest.mark.parametrize("clabe", VALID)
def test_known_good_clabes_pass(clabe):
    assert validate_clabe(clabe) == clabe
    assert check_digit(clabe[:17]) == int(clabe[17])


@pytest.mark.parametrize(
    ("clabe", "fragment"),
    [
        ("002000000000000007", "check digit (expected 8)"),
        ("00201007777777777", "exactly 18 digits"),
        ("0020100777777777711", "exactly 18 digits"),
        ("00201007777777777a", "exactly 18 digits"),
        ("000000000000000000", "no known bank"),  # checksum fine, bank 000 unknown
        ("", "exactly 18 digits"),
    ],
)
def test_bad_clabes_say_what_is_wrong(clabe, fragment):
    with pytest.raises(InvalidClabe) as caught:
        validate_clabe(clabe)
    assert fragment in caught.value.message
    assert not is_valid_clabe(clabe)


def test_every_single_digit_typo_is_caught():
    good = "012180004643051249"
    for position in range(18):
        for digit in "0123456789":
            if digit == good[position]:
                continue
            typo = good[:position] + digit + good[position + 1 :]
            if typo[:3] != good[:3]:
                continue  # a different bank code is a different (maybe valid) account
            assert not is_valid_clabe(typo), typo


def test_bank_lookups():
    assert bank_name("646180110400000007") == "STP"
    assert institution_code("646180110400000007") == "90646"
    assert institution_code("012180004643051249") == "40012"
