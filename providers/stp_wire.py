"""STP's wire format: the cadena original and its firma, JSON with exact amounts, the
fields of an order, STP's estados and error ids, how abonos are named, and the proof
Cobro asks of a callback. Pure functions, no I/O; providers/stp.py does the HTTP.

The firma is base64 RSA PKCS#1 v1.5 / SHA-256 over a "cadena original", `||` + fixed
fields joined by `|` + `||` (cuenca-mx/stpmex-python `auth.py`). Queries (consOrdenesFech,
consOrdEnvRastreo) sign the order's cadena with only empresa, fechaOperacion,
claveRastreo and institucionOperante filled in, which is exactly stpmex-python's
`_firma_consulta`. Amounts cross as JSON numbers, "%.2f" in the cadena, integer centavos
inside Cobro; no float is ever involved (`stp_json`, `monto_text`, `parse_monto`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from base64 import b64encode
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.domain.clabe import institution_code, with_check_digit
from app.domain.errors import InvalidAmount
from app.domain.money import Currency, parse_amount
from providers.base import (
    PayoutRequest,
    ProviderEvent,
    ProviderStatus,
    RefundRequest,
    WebhookRejected,
)
from providers.shapes import Fields, Malformed, check_integer

STP_INSTITUTION = "90646"  # STP's Banxico code: the operating institution of our orders
TIPO_CUENTA_CLABE = 40  # SPEI account type of an 18-digit CLABE
TIPO_PAGO_TERCERO = 1  # third party to third party
PAIS_MEXICO = 187  # STP's country catalogue (stpmex-python `types.Pais.MX`)
# Defaults stpmex-python sends with every order (`ordenes.py`), part of the cadena.
TOPOLOGIA, MEDIO_ENTREGA, PRIORIDAD_NORMAL = "T", 3, 0

REFERENCE_DIGITS: Final = 7  # referencia numérica: at most 7 digits (Banxico)
MAX_CLAVE_RASTREO = 29  # stpmex-python truncates tracking keys to 29
MAX_TEXT = 39  # conceptoPago and names: ASCII, at most 39 characters (stpmex-python)
MAX_AMOUNT_EXPONENT = 12  # a monto beyond 10^12 pesos is garbage, not money

# Cobro's proof on a callback (STP signs none): see providers/stp.py.
SIGNATURE_HEADER = "x-stp-signature"
# Generic on purpose: the webhook route copies a `?token=` of the callback URL into it,
# for any PSP that authenticates its callbacks by a secret in the URL.
TOKEN_HEADER = "x-webhook-token"

# The cadena original's field order for an order (stpmex-python `auth.ORDEN_FIELDNAMES`).
ORDEN_FIELDS = (  # noqa: SIM905 - as a 34-line list the order would be hard to check
    "institucionContraparte empresa fechaOperacion folioOrigen claveRastreo "
    "institucionOperante monto tipoPago tipoCuentaOrdenante nombreOrdenante cuentaOrdenante "
    "rfcCurpOrdenante tipoCuentaBeneficiario nombreBeneficiario cuentaBeneficiario "
    "rfcCurpBeneficiario emailBeneficiario tipoCuentaBeneficiario2 nombreBeneficiario2 "
    "cuentaBeneficiario2 rfcCurpBeneficiario2 conceptoPago conceptoPago2 claveCatUsuario1 "
    "claveCatUsuario2 clavePago referenciaCobranza referenciaNumerica tipoOperacion topologia "
    "usuario medioEntrega prioridad iva"
).split()
# ... and for an account registration (`auth.CUENTA_FIELDNAMES`).
CUENTA_FIELDS = ("empresa", "cuenta", "rfcCurp")


# Order-status callback `Estado` -> status of the refund it carries (speid `types.Estado`).
# EXITO is the lower-case `estado` of STP's newer cambioEstado callback in one public
# integration; unconfirmed, and harmless: anything unknown stays PENDING.
ORDEN_STATUS = {
    "LIQUIDACION": ProviderStatus.SUCCEEDED,
    "EXITO": ProviderStatus.SUCCEEDED,
    "DEVOLUCION": ProviderStatus.FAILED,
    "CANCELACION": ProviderStatus.FAILED,
}
# consOrdenesFech `estado` of a received order -> what it means for the pay-in.
RECEIVED_STATUS = {
    "LQ": ProviderStatus.SUCCEEDED,  # liquidada: the money is ours
    "D": ProviderStatus.FAILED,  # devuelta: returned to the payer
    "XD": ProviderStatus.FAILED,  # por devolver
    "CN": ProviderStatus.FAILED,  # cancelada
}
# consOrdEnvRastreo `estado` of an order we sent (a refund); the rest is still on its way.
SENT_STATUS = {
    "LQ": ProviderStatus.SUCCEEDED,  # liquidada: as a LIQUIDACION callback says
    "D": ProviderStatus.FAILED,  # devuelta: as DEVOLUCION
    "CN": ProviderStatus.FAILED,  # cancelada: as CANCELACION
}
# STP error descriptions that mean "STP had a hiccup", worth trying again: nothing else.
TRANSIENT_ERRORS = ("No se recibió respuesta del servicio",)
NO_ORDERS = -100  # consOrdenesFech / consOrdEnvRastreo: nothing found, an empty answer
CLAVE_DUPLICADA = -1  # registraOrden: this claveRastreo was used today already, when ...
CLAVE_USED = re.compile(r"La clave de rastreo .+ ya fue utilizada")  # ... it says so (stpmex)
CUENTA_OK = frozenset({0, 3})  # registered ("Cuenta en revisión." included), or already so
# SPEI's return cause 14, "Falta información mandatoria para completar el pago" (Banxico's
# catalogue of causas de devolución): what an abono Cobro cannot read is returned with.
MALFORMED_RETURN_CAUSE = 14
# The fields that name an abono, and how long each may be.
ABONO_ID_FIELDS = ("fechaOperacion", "institucionOrdenante", "claveRastreo")
MAX_ID_PART = 40  # a claveRastreo has at most 30 characters; dates and bank codes fewer
MAX_ID_NUMBER = 10**12


def monto_text(minor: int) -> str:
    """Centavos as STP writes pesos, "%.2f" without a float: 123456 -> "1234.56"."""
    return f"{minor // 100}.{minor % 100:02d}"


def parse_monto(value: object) -> int:
    """Centavos in an STP monto (0.01, "1234.56", 500), exactly; InvalidAmount if it is not.

    JSON numbers must reach here as their text (json.loads(parse_float=str)) or as a
    Decimal (parse_float=Decimal). Java writes doubles of 10^7 and more as "1.2E7", so
    exponents are expanded first.
    """
    if isinstance(value, Decimal):
        value = str(value)
    if isinstance(value, str) and "e" in value.lower():
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        # Both ways: "1E-99999999" written out would be a hundred million characters.
        if number.is_finite() and abs(number.adjusted()) <= MAX_AMOUNT_EXPONENT:
            value = format(number, "f")
    return parse_amount(value, Currency.MXN).minor


def ascii_text(value: str, limit: int = MAX_TEXT) -> str:
    """Plain ASCII, as STP takes names and concepts: accents dropped, cut to `limit`."""
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return " ".join(plain.split())[:limit].strip()


def assigned_clabe(prefix: str, reference_number: int) -> str:
    """The CLABE of one attempt: the company's prefix, 7 digits, check digit."""
    return with_check_digit(f"{prefix}{reference_number % 10**REFERENCE_DIGITS:07d}")


def clave_rastreo(refund_id: str) -> str:
    """A tracking key unique per refund: its id's letters and digits (STP takes nothing else)."""
    key = "".join(c for c in refund_id if c.isascii() and c.isalnum())
    if len(key) <= MAX_CLAVE_RASTREO:
        return key
    return hashlib.sha256(refund_id.encode()).hexdigest()[:MAX_CLAVE_RASTREO]


def referencia_numerica(refund_id: str) -> int:
    """1..9,999,999 derived from the refund id, so a retried order signs the same cadena."""
    digest = int(hashlib.sha256(refund_id.encode()).hexdigest(), 16)
    return digest % (10**REFERENCE_DIGITS - 1) + 1


def cadena_original(values: Mapping[str, Any], fields: tuple[str, ...] | list[str]) -> str:
    """`||v1|v2|...||` over `fields` in order; missing fields are empty, montos "%.2f"."""
    return "||" + "|".join(_cadena_value(values.get(name)) for name in fields) + "||"


def _cadena_value(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if isinstance(value, Decimal) else str(value)


def sign_cadena(key: RSAPrivateKey, cadena: str) -> str:
    """STP's firma: RSA PKCS#1 v1.5 over SHA-256 of the UTF-8 cadena, base64."""
    return b64encode(key.sign(cadena.encode("utf-8"), padding.PKCS1v15(), SHA256())).decode()


def load_signing_key(pem: str, passphrase: str) -> RSAPrivateKey:
    key = load_pem_private_key(pem.encode(), passphrase.encode() or None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("STP signs with RSA: the private_key option is not an RSA key")
    return key


def stp_json(payload: Mapping[str, Any]) -> bytes:
    """JSON as STP exchanges it: Decimal amounts become bare numbers (1234.56), never floats."""
    numbers: dict[str, str] = {}

    def mark(value: object) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(value).__name__} is not JSON")
        token = f"@@decimal{len(numbers)}@@"
        numbers[token] = str(value)
        return token

    text = json.dumps(payload, default=mark, ensure_ascii=False)
    for token, number in numbers.items():
        text = text.replace(f'"{token}"', number)
    return text.encode()


def refund_order(
    request: RefundRequest, clabe: str, *, empresa: str, cuenta_ordenante: str
) -> dict[str, Any]:
    """The registraOrden fields (before the firma) that send `request` back to `clabe`."""
    return {
        "institucionContraparte": institution_code(clabe),
        "empresa": empresa,
        "claveRastreo": clave_rastreo(request.refund_id),
        "institucionOperante": STP_INSTITUTION,
        "monto": Decimal(monto_text(request.amount.minor)),
        "tipoPago": TIPO_PAGO_TERCERO,
        "tipoCuentaOrdenante": TIPO_CUENTA_CLABE,
        "cuentaOrdenante": cuenta_ordenante,
        "tipoCuentaBeneficiario": TIPO_CUENTA_CLABE,
        "nombreBeneficiario": ascii_text(request.beneficiary or "CLIENTE").upper() or "CLIENTE",
        "cuentaBeneficiario": clabe,
        "rfcCurpBeneficiario": "ND",
        "conceptoPago": ascii_text(f"DEVOLUCION {request.intent_id}"),
        "referenciaNumerica": referencia_numerica(request.refund_id),
        "topologia": TOPOLOGIA,
        "medioEntrega": MEDIO_ENTREGA,
        "prioridad": PRIORIDAD_NORMAL,
    }


MAX_CONCEPT = 40  # a payout's concepto: Cobro checked it is SPEI text of at most 40


def payout_order(request: PayoutRequest, *, empresa: str, cuenta_ordenante: str) -> dict[str, Any]:
    """The registraOrden fields (before the firma) of a payout: the merchant's concept,
    reference and beneficiary, Cobro's tracking key."""
    return {
        "institucionContraparte": institution_code(request.clabe),
        "empresa": empresa,
        "claveRastreo": request.tracking_key,
        "institucionOperante": STP_INSTITUTION,
        "monto": Decimal(monto_text(request.amount.minor)),
        "tipoPago": TIPO_PAGO_TERCERO,
        "tipoCuentaOrdenante": TIPO_CUENTA_CLABE,
        "cuentaOrdenante": cuenta_ordenante,
        "tipoCuentaBeneficiario": TIPO_CUENTA_CLABE,
        "nombreBeneficiario": ascii_text(request.beneficiary_name).upper() or "ND",
        "cuentaBeneficiario": request.clabe,
        "rfcCurpBeneficiario": request.rfc or "ND",
        "conceptoPago": ascii_text(request.concept, MAX_CONCEPT),
        "referenciaNumerica": request.reference,
        "topologia": TOPOLOGIA,
        "medioEntrega": MEDIO_ENTREGA,
        "prioridad": PRIORIDAD_NORMAL,
    }


def same_order(listed: Mapping[str, Any], clabe: str, minor: int) -> bool:
    """Whether an order STP lists pays `minor` centavos to `clabe` (STP pads text fields)."""
    try:
        amount = parse_monto(listed.get("monto"))
    except InvalidAmount:
        return False
    return str(listed.get("cuentaBeneficiario", "")).strip() == clabe and amount == minor


def abono_event_id(abono: Mapping[str, Any] | Fields) -> str:
    """An abono's event id. SPEI makes (fechaOperacion, institucionOrdenante, claveRastreo)
    unique; Malformed if one is missing or is not a short number or text."""
    fields = abono if isinstance(abono, Fields) else Fields(abono, "callback")
    return _abono_key(*(_id_part(fields, key) for key in ABONO_ID_FIELDS))


def _id_part(abono: Fields, key: str) -> str:
    value = abono.raw(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(check_integer(value, f"callback.{key}", minimum=0, maximum=MAX_ID_NUMBER))
    text = abono.text(key, max_length=MAX_ID_PART).strip()
    if not text:
        raise Malformed(f"callback.{key}", "is blank")
    return text


def listed_abono_id(row: Mapping[str, Any]) -> str:
    """The event id of the abono callback for a received order consOrdenesFech lists, where
    the paying bank is the `institucionContraparte` (STP is the operante); KeyError if a
    field is missing."""
    ordenante = row.get("institucionOrdenante", row["institucionContraparte"])
    return _abono_key(row["fechaOperacion"], ordenante, row["claveRastreo"])


def _abono_key(fecha: object, ordenante: object, clave: object) -> str:
    # 20200127 and "20200127", 40012 and "40012" are the same day and bank, and STP pads
    # text fields with spaces in some answers (stpmex-python strips them).
    return "abono:" + ":".join(str(part).strip() for part in (fecha, ordenante, clave))


def sign_callback(body: bytes, secret: str) -> str:
    """Cobro's `X-Stp-Signature` for a callback body: hex HMAC-SHA256 (not STP's doing)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_callback(
    headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...], token: str
) -> None:
    """Raise WebhookRejected unless the callback carries a valid signature or token.

    Compared as bytes: hmac.compare_digest raises TypeError on a non-ASCII str, which a
    forged header would turn into a 500."""
    lowered = {key.lower(): value.strip() for key, value in headers.items()}
    signature = _utf8(lowered.get(SIGNATURE_HEADER, "").lower())
    # An empty secret verifies against an empty key, which anyone can forge.
    for secret in filter(None, secrets):
        if signature and hmac.compare_digest(sign_callback(body, secret).encode(), signature):
            return
    presented = _utf8(lowered.get(TOKEN_HEADER, ""))
    if token and presented and hmac.compare_digest(_utf8(token), presented):
        return
    raise WebhookRejected("STP callback has no valid X-Stp-Signature or X-Webhook-Token")


def _utf8(text: str) -> bytes:
    # surrogatepass: even a str no header decoder produces becomes bytes, not an error.
    return text.encode("utf-8", "surrogatepass")


def malformed_reply(payload: Any) -> dict[str, Any]:
    """What STP hears of a signed callback Cobro cannot read: an order status is
    acknowledged ("recibido"); anything else may be money, which Cobro cannot record,
    so it goes back to the payer with a SPEI return cause."""
    is_orden = isinstance(payload, dict) and ("Estado" in payload or "estado" in payload)
    if is_orden and "cuentaBeneficiario" not in payload:
        return {"mensaje": "recibido"}
    return abono_reply(None, return_cause=MALFORMED_RETURN_CAUSE)


def abono_reply(event: ProviderEvent | None, return_cause: int | None = None) -> dict[str, Any]:
    """The body STP expects back: accept an abono, or return it with a SPEI cause code.

    Order-status callbacks only need a 200; "recibido" is what public integrations say.
    """
    if event is not None and event.type != "abono":
        return {"mensaje": "recibido"}
    if return_cause is not None:
        return {"mensaje": "devolver", "id": return_cause}
    return {"mensaje": "confirmar"}
