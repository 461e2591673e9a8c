"""An SPEI payout: its fields as SPEI takes them, its statuses and their moves.

Facts from ../shared/reference/mexico-payments.md (SPEI order fields, returns):
a concepto de pago of at most 40 characters that SPEI carries (plain ASCII letters,
digits, spaces and common punctuation: stpmex-python forces ASCII), a referencia
numérica 1..9,999,999, a clave de rastreo of at most 30 letters and digits that is
unique per sender and day. RETURNED may follow PAID: the receiving bank can send a
transfer back after it was credited (DEVOLUCION), so PAID is not final.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.domain.errors import InvalidConcept, InvalidInput, InvalidReference, InvalidState
from app.domain.money import Money

MAX_CONCEPT = 40
MAX_REFERENCE = 9_999_999
MAX_TRACKING_KEY = 30
MAX_BENEFICIARY = 40
TRACKING_PREFIX = "CB"  # Cobro's keys, told apart from the merchant's own at a glance
# What SPEI carries in a concepto: ASCII letters, digits, space and this punctuation.
_CONCEPT = re.compile(r"[A-Za-z0-9 .,:;\-_/()#&+*'?!@$%=]+")
# RFC: 3 (company) or 4 (person) letters, a date, 3 characters; CURP: 18 characters.
_RFC = re.compile(r"[A-Z&Ñ]{3,4}[0-9]{6}[A-Z0-9]{3}|[A-Z]{4}[0-9]{6}[HM][A-Z]{5}[A-Z0-9][0-9]")


class PayoutStatus(enum.StrEnum):
    PENDING = "PENDING"  # recorded, no PSP has accepted it
    IN_TRANSIT = "IN_TRANSIT"  # a PSP accepted it
    PAID = "PAID"  # LIQUIDACION: the receiving bank credited it
    RETURNED = "RETURNED"  # DEVOLUCION: the receiving bank sent it back
    FAILED = "FAILED"  # refused (insufficient funds, a bad account) or canceled by the PSP
    CANCELED = "CANCELED"  # canceled by the merchant before it left


P = PayoutStatus

PAYOUT_TRANSITIONS: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    P.PENDING: frozenset({P.IN_TRANSIT, P.FAILED, P.CANCELED}),
    # A PSP may settle and report both at once: LIQUIDACION can also be the first news.
    P.IN_TRANSIT: frozenset({P.PAID, P.RETURNED, P.FAILED}),
    P.PAID: frozenset({P.RETURNED}),
    P.RETURNED: frozenset(),
    P.FAILED: frozenset(),
    P.CANCELED: frozenset(),
}
FINAL_PAYOUT_STATUSES = frozenset(s for s, nexts in PAYOUT_TRANSITIONS.items() if not nexts)


def is_final_payout(status: PayoutStatus) -> bool:
    return status in FINAL_PAYOUT_STATUSES


@dataclass(frozen=True, slots=True)
class PayoutReturn:
    """SPEI's causa de devolución, e.g. ("01", "account does not exist")."""

    code: str
    message: str


# The STP catalogue of return causes (mexico-payments.md §2, Returns).
RETURN_REASONS = {
    "01": "account does not exist",
    "02": "account blocked",
    "03": "account canceled",
    "05": "account in another currency",
    "06": "account not at the receiving participant",
    "13": "beneficiary does not recognise the payment",
    "14": "mandatory information missing",
    "15": "wrong payment type",
    "16": "wrong operation type",
    "17": "account type mismatch",
    "18": "requested by the sender",
    "19": "invalid character",
    "20": "balance limit exceeded",
    "21": "monthly deposit limit exceeded",
    "22": "phone number not registered",
    "23": "additional account takes only Banxico payments",
    "24": "bad additional information structure",
    "30": "tracking key repeated for the sender and day",
}


def return_reason(code: object) -> PayoutReturn:
    """The return cause as two digits and its meaning ("1" and 1 are "01")."""
    text = str(code).strip()
    if text.isdigit() and len(text) <= 2:
        text = text.zfill(2)
    return PayoutReturn(text, RETURN_REASONS.get(text, "returned by the receiving bank"))


def validate_concept(value: str, field: tuple[str, ...] | None = None) -> str:
    concept = " ".join(value.split())
    if not concept:
        raise InvalidConcept("concept is empty; SPEI needs a concepto de pago", field)
    if len(concept) > MAX_CONCEPT:
        raise InvalidConcept(f"concept is at most {MAX_CONCEPT} characters", field)
    if not _CONCEPT.fullmatch(concept):
        bad = sorted({c for c in concept if not _CONCEPT.fullmatch(c)})
        raise InvalidConcept(
            f"concept has characters SPEI does not carry: {''.join(bad)!r} "
            "(letters without accents, digits, spaces and .,:;-_/()#&+*'?!@$%=)",
            field,
        )
    return concept


def validate_reference(value: int, field: tuple[str, ...] | None = None) -> int:
    if isinstance(value, bool) or not 1 <= value <= MAX_REFERENCE:
        raise InvalidReference(f"reference is a number from 1 to {MAX_REFERENCE:,}", field)
    return value


def reference_for(payout_id: str) -> int:
    """The referencia numérica of a payout that was given none: from its id, 1..9,999,999."""
    digest = int(hashlib.sha256(payout_id.encode()).hexdigest(), 16)
    return digest % MAX_REFERENCE + 1


def tracking_key_for(payout_id: str) -> str:
    """Cobro's clave de rastreo: letters and digits of the id (unique), at most 30."""
    key = TRACKING_PREFIX + "".join(c for c in payout_id if c.isascii() and c.isalnum())
    if len(key) > MAX_TRACKING_KEY:
        key = TRACKING_PREFIX + hashlib.sha256(payout_id.encode()).hexdigest()
    return key[:MAX_TRACKING_KEY]


def validate_beneficiary(value: str, field: tuple[str, ...] | None = None) -> str:
    name = " ".join(value.split())
    if not name or len(name) > MAX_BENEFICIARY or not name.isprintable():
        raise InvalidInput(f"beneficiaryName is 1 to {MAX_BENEFICIARY} printable characters", field)
    return name


def validate_rfc(value: str | None, field: tuple[str, ...] | None = None) -> str | None:
    if value is None:
        return None
    rfc = value.strip().upper()
    if not _RFC.fullmatch(rfc):
        raise InvalidInput("rfc is an RFC (12 or 13 characters) or a CURP (18)", field)
    return rfc


@dataclass(frozen=True, slots=True)
class Payout:
    """One SPEI transfer out of the merchant's account, at one version of its life."""

    id: str
    merchant_id: str
    status: PayoutStatus
    version: int
    amount: Money
    clabe: str
    bank: str
    beneficiary_name: str
    concept: str
    reference: int
    tracking_key: str  # Cobro's, fixed at creation; shown once a PSP accepted it
    created_at: datetime
    updated_at: datetime
    rfc: str | None = None
    provider: str | None = None
    provider_ref: str | None = None
    return_reason: PayoutReturn | None = None
    failure_message: str | None = None
    refund_id: str | None = None
    metadata: dict[str, Any] | None = None
    paid_at: datetime | None = None  # the CEP is looked up by this day

    @property
    def accepted(self) -> bool:
        """Whether a PSP has taken the transfer (so its tracking key is in SPEI): it gave
        the transfer an id of its own. A PSP that refused it gave none."""
        return self.provider_ref is not None

    def changed(self, now: datetime, **changes: Any) -> Payout:
        return replace(self, version=self.version + 1, updated_at=now, **changes)

    def moved_to(self, status: PayoutStatus, now: datetime, **changes: Any) -> Payout:
        """The payout in `status`, or InvalidState when the machine forbids the move."""
        if status not in PAYOUT_TRANSITIONS[self.status]:
            raise InvalidState(
                f"payout {self.id} is {self.status.value} and cannot become {status.value}"
            )
        return self.changed(now, status=status, **changes)
