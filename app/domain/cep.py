"""The CEP (Comprobante Electrónico de Pago): Banxico's proof that an SPEI transfer was
paid, looked up by operation date, tracking key, sending and receiving institutions,
beneficiary account and amount (mexico-payments.md §2 and §9). Pure: the lookup URL
of a PAID payout, from the fields kept on it."""

from __future__ import annotations

from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from app.domain.clabe import institution_code
from app.domain.payouts import Payout, PayoutStatus

# SPEI's operating day is Mexico City's.
MEXICO_CITY = ZoneInfo("America/Mexico_City")
# The Banxico institution that sends for each PSP: where our orders leave from.
SENDING_INSTITUTIONS = {"stp": "90646", "conekta": "90646"}
BANXICO_CEP = "https://www.banxico.org.mx/cep/"


def cep_fields(payout: Payout) -> dict[str, str] | None:
    """Banxico's lookup fields for a payout that was paid (or paid, then returned)."""
    if payout.paid_at is None or payout.provider is None:
        return None
    if payout.status not in (PayoutStatus.PAID, PayoutStatus.RETURNED):
        return None
    return {
        "fecha": payout.paid_at.astimezone(MEXICO_CITY).strftime("%d-%m-%Y"),
        "criterio": payout.tracking_key,
        "emisor": SENDING_INSTITUTIONS.get(payout.provider, ""),
        "receptor": institution_code(payout.clabe),
        "cuenta": payout.clabe,
        "monto": payout.amount.to_decimal_string(),
    }


def cep_url(payout: Payout, base: str) -> str | None:
    fields = cep_fields(payout)
    return None if fields is None else f"{base}?{urlencode(fields)}"
