"""STP (Sistema de Transferencias y Pagos): SPEI pay-ins to per-attempt CLABEs, SPEI refunds.

STP's REST API (`/speiws/rest` on https://demo.stpmex.com:7024 or https://prod.stpmex.com)
has no API key: each request carries a `firma`, base64 RSA PKCS#1 v1.5 / SHA-256 over a
"cadena original", `||` + fixed fields joined by `|` + `||` (cuenca-mx/stpmex-python
`auth.py`), and errors come back as HTTP 200 with STP's own ids (`client.py`). Amounts
cross as JSON numbers, "%.2f" in the cadena, integer centavos inside Cobro; no float is
ever involved (`stp_json`, `monto_text`, `parse_monto`).

Pay-in: each attempt gets its own CLABE, `clabe_prefix` + the reference number's last 7
digits + check digit, registered as an account of the company (`PUT /cuentaModule/moral`,
firma over `||empresa|cuenta|rfcCurp||`) because STP takes transfers only to registered
accounts; the money arrives by the "abono" callback. A prefix holds 10^7 CLABEs, so
reference numbers must not wrap onto one that may still receive money. STP cannot limit
who pays into a CLABE, so `payer_clabe` is not sent (the abono's `cuentaOrdenante` says
who paid). Cancel deregisters the CLABE (`DELETE`), so SPEI returns late transfers.
Refund: an outgoing order (`PUT /ordenPago/registra`), settled later by a callback.

Options (`ProviderConfig.options`):
    empresa             the company name STP knows us by; signed into every request
    private_key         PEM of the company's RSA signing key (STP holds its public half)
    passphrase          that PEM's passphrase; empty for an unencrypted key
    clabe_prefix        the company's first 10 CLABE digits: 646 (STP) + 180 + 4-digit prefix
    rfc                 the company's RFC: per-attempt CLABEs are registered in its name
    fecha_constitucion  the company's incorporation date (YYYYMMDD), sent with the RFC
    cuenta_ordenante    the company's own STP CLABE that refunds are paid from
    webhook_token       optional: the secret in the callback URL registered at STP (below)

Callbacks: STP signs neither the abono nor the order-status callback; it relies on an IP
allow-list, and the public integrations we read (cuenca-mx/speid, wtech-mx) check nothing
else. Behind a load balancer the source address proves nothing, so on top of that
allow-list Cobro requires its own proof, either `X-Stp-Signature`: hex HMAC-SHA256 of the
raw body under any of `config.webhook_secrets` (added by a relay inside the allow-listed
network, and by the sandbox), or `X-Stp-Webhook-Token` equal to `webhook_token`, which the
webhook route copies from the `?token=` of the URL registered at STP (public integrations
put such a secret in the callback path). Constant-time compares; an empty secret never
matches. No timestamp: a replayed callback has the same event id, applied once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from base64 import b64encode
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.domain.clabe import institution_code, validate_clabe, with_check_digit
from app.domain.errors import InvalidAmount
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, parse_amount
from app.domain.next_action import SpeiInstructions
from providers.base import (
    INVALID_REQUEST,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderEvent,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    WebhookRejected,
)
from providers.http import PspHttp

REGISTRA_PATH = "/speiws/rest/ordenPago/registra"
CONSULTA_PATH = "/speiws/rest/ordenPago/consOrdenesFech"
CUENTA_PATH = "/speiws/rest/cuentaModule/moral"

STP_INSTITUTION = "90646"  # STP's Banxico code: the operating institution of our orders
TIPO_CUENTA_CLABE = 40  # SPEI account type of an 18-digit CLABE
TIPO_PAGO_TERCERO = 1  # third party to third party
PAIS_MEXICO = 187  # STP's country catalogue (stpmex-python `types.Pais.MX`)
RECEIVED = "R"  # consOrdenesFech `estado`: orders we received (E: sent)
# Defaults stpmex-python sends with every order (`ordenes.py`), part of the cadena.
TOPOLOGIA, MEDIO_ENTREGA, PRIORIDAD_NORMAL = "T", 3, 0

REFERENCE_DIGITS = 7  # referencia numérica: at most 7 digits (Banxico)
CLABE_PREFIX_DIGITS = 10  # bank 646 + plaza 180 + the company's 4 digits; 7 are ours to assign
MAX_CLAVE_RASTREO = 29  # stpmex-python truncates tracking keys to 29
MAX_TEXT = 39  # conceptoPago and names: ASCII, at most 39 characters (stpmex-python)
MAX_AMOUNT_EXPONENT = 12  # a monto beyond 10^12 pesos is garbage, not money

# Options a misconfigured deployment should fail on at start-up, not at STP's first refusal.
REQUIRED_OPTIONS = (
    "empresa",
    "private_key",
    "clabe_prefix",
    "rfc",
    "fecha_constitucion",
    "cuenta_ordenante",
)

SIGNATURE_HEADER = "x-stp-signature"
TOKEN_HEADER = "x-stp-webhook-token"

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
# STP error descriptions that mean "STP had a hiccup", worth trying again: nothing else.
TRANSIENT_ERRORS = ("No se recibió respuesta del servicio",)
NO_ORDERS = -100  # consOrdenesFech: "No se encontraron ordenes", an empty answer
CUENTA_OK = frozenset({0, 3})  # registered ("Cuenta en revisión." included), or already so


def monto_text(minor: int) -> str:
    """Centavos as STP writes pesos, "%.2f" without a float: 123456 -> "1234.56"."""
    return f"{minor // 100}.{minor % 100:02d}"


def parse_monto(value: object) -> int:
    """Centavos in an STP monto (0.01, "1234.56", 500), exactly; InvalidAmount if it is not.

    JSON numbers must reach here as their text (json.loads(parse_float=str)). Java writes
    doubles of 10^7 and more as "1.2E7", so exponents are expanded first.
    """
    if isinstance(value, str) and "e" in value.lower():
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite() and number.adjusted() <= MAX_AMOUNT_EXPONENT:
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


def sign_callback(body: bytes, secret: str) -> str:
    """Cobro's `X-Stp-Signature` for a callback body: hex HMAC-SHA256 (not STP's doing)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_callback(
    headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...], token: str
) -> None:
    """Raise WebhookRejected unless the callback carries a valid signature or token."""
    lowered = {key.lower(): value.strip() for key, value in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER, "").lower().encode()
    # An empty secret verifies against an empty key, which anyone can forge.
    for secret in filter(None, secrets):
        if signature and hmac.compare_digest(sign_callback(body, secret).encode(), signature):
            return
    presented = lowered.get(TOKEN_HEADER, "").encode()
    if token and presented and hmac.compare_digest(token.encode(), presented):
        return
    raise WebhookRejected("STP callback has no valid X-Stp-Signature or X-Stp-Webhook-Token")


def abono_reply(event: ProviderEvent | None, return_cause: int | None = None) -> dict[str, Any]:
    """The body STP expects back: accept an abono, or return it with a SPEI cause code.

    Order-status callbacks only need a 200; "recibido" is what public integrations say.
    """
    if event is not None and event.type != "abono":
        return {"mensaje": "recibido"}
    if return_cause is not None:
        return {"mensaje": "devolver", "id": return_cause}
    return {"mensaje": "confirmar"}


class StpProvider:
    name = "stp"
    methods = frozenset({PaymentMethodType.SPEI})

    def __init__(
        self, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        options = config.options
        missing = [name for name in REQUIRED_OPTIONS if not options.get(name)]
        if missing:
            raise ValueError(f"the STP adapter needs the options {', '.join(missing)}")
        self.config = config
        self.empresa = options["empresa"]
        self.clabe_prefix = options["clabe_prefix"]
        self.rfc = options["rfc"]
        self.fecha_constitucion = options["fecha_constitucion"]
        self.cuenta_ordenante = validate_clabe(options["cuenta_ordenante"])
        self.webhook_token = options.get("webhook_token", "")
        if len(self.clabe_prefix) != CLABE_PREFIX_DIGITS or not self.clabe_prefix.isdigit():
            raise ValueError("the STP clabe_prefix option must be the CLABE's first 10 digits")
        self.key = load_signing_key(options["private_key"], options.get("passphrase", ""))
        self.http = PspHttp(
            self.name, config, transport=transport, headers={"Content-Type": "application/json"}
        )

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment:
        if request.method is not PaymentMethodType.SPEI or request.reference_number is None:
            raise self._invalid("serves SPEI with a reference number only")
        clabe = assigned_clabe(self.clabe_prefix, request.reference_number)
        answer = await self._cuenta("PUT", clabe, idempotency_key)
        reference = str(request.reference_number % 10**REFERENCE_DIGITS)
        return ProviderPayment(
            provider_ref=clabe,
            status=ProviderStatus.REQUIRES_ACTION,
            next_action=SpeiInstructions(
                clabe=clabe,
                bank="STP",
                beneficiary=self.empresa,
                reference=reference,
                expires_at=request.expires_at,
            ),
            lookup_keys=(clabe,),
            raw=answer,
        )

    async def fetch_payment(self, provider_ref: str) -> ProviderPayment:
        """What STP lists as received today at this CLABE (consOrdenesFech covers one
        operating day; earlier deposits are known from their callbacks)."""
        consulta: dict[str, Any] = {"empresa": self.empresa, "estado": RECEIVED}
        consulta["firma"] = sign_cadena(self.key, cadena_original(consulta, ORDEN_FIELDS))
        response = await self.http.request("POST", CONSULTA_PATH, content=stp_json(consulta))
        resultado = self._resultado(response, empty_ok=True)
        orders = [
            o
            for o in resultado.get("lst") or []
            if isinstance(o, dict) and str(o.get("cuentaBeneficiario")) == provider_ref
        ]
        return self._deposits(provider_ref, orders)

    def _deposits(self, clabe: str, orders: list[dict[str, Any]]) -> ProviderPayment:
        estados = [RECEIVED_STATUS.get(str(o.get("estado"))) for o in orders]
        settled = [o for o, e in zip(orders, estados, strict=True) if e is ProviderStatus.SUCCEEDED]
        try:
            paid = sum(parse_monto(o.get("monto")) for o in settled)
        except InvalidAmount as exc:
            message = f"listed a bad monto: {exc.message}"
            raise ProviderError(self.name, message, retryable=True) from exc
        if paid:
            status = ProviderStatus.SUCCEEDED
        elif None in estados:
            status = ProviderStatus.PROCESSING  # an estado we do not know: not final yet
        else:
            status = ProviderStatus.REQUIRES_ACTION
        return ProviderPayment(
            provider_ref=clabe,
            status=status,
            amount_received=paid or None,
            lookup_keys=(clabe,),
            raw={"ordenes": orders},
        )

    async def cancel_payment(self, provider_ref: str, idempotency_key: str) -> ProviderPayment:
        """Deregister the CLABE: SPEI then returns any transfer still on its way."""
        answer = await self._cuenta("DELETE", provider_ref, idempotency_key)
        return ProviderPayment(
            provider_ref=provider_ref, status=ProviderStatus.CANCELED, raw=answer
        )

    async def refund(self, request: RefundRequest, idempotency_key: str) -> ProviderRefund:
        if request.clabe is None or request.amount.currency is not Currency.MXN:
            raise self._invalid("SPEI refunds need an MXN amount and the customer's CLABE")
        clabe = validate_clabe(request.clabe)  # InvalidClabe before any call
        order = refund_order(
            request, clabe, empresa=self.empresa, cuenta_ordenante=self.cuenta_ordenante
        )
        order["firma"] = sign_cadena(self.key, cadena_original(order, ORDEN_FIELDS))
        response = await self.http.request(
            "PUT", REGISTRA_PATH, content=stp_json(order), idempotency_key=idempotency_key
        )
        resultado = self._resultado(response)
        return ProviderRefund(
            provider_ref=str(resultado["id"]), status=ProviderStatus.PENDING, raw=resultado
        )

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]:
        verify_callback(headers, body, self.config.webhook_secrets, self.webhook_token)
        try:
            payload = json.loads(body, parse_float=str)  # montos keep their exact text
        except ValueError:
            raise WebhookRejected("STP callback body is not JSON") from None
        if not isinstance(payload, dict):
            raise WebhookRejected("STP callback body is not a JSON object")
        if "cuentaBeneficiario" in payload:
            return [self._abono_event(payload)]
        if "Estado" in payload or "estado" in payload:
            return [self._orden_event(payload)]
        raise WebhookRejected("STP callback is neither an abono nor an order status")

    def webhook_ack(self, events: list[ProviderEvent]) -> dict[str, Any]:
        """The 200 body STP expects for a callback the webhook route accepted."""
        return abono_reply(events[0] if events else None)

    def _abono_event(self, payload: dict[str, Any]) -> ProviderEvent:
        """A transfer landed at one of our CLABEs. SPEI makes (fechaOperacion,
        institucionOrdenante, claveRastreo) unique, so it is the event id."""
        try:
            clabe = str(payload["cuentaBeneficiario"])
            amount = parse_monto(payload["monto"])
            key = [str(payload[k]) for k in ("fechaOperacion", "institucionOrdenante")]
            key.append(str(payload["claveRastreo"]))
        except (KeyError, InvalidAmount) as exc:
            raise WebhookRejected(f"STP abono lacks or garbles a field: {exc}") from None
        settled = payload.get("tsLiquidacion")
        return ProviderEvent(
            provider=self.name,
            event_id="abono:" + ":".join(key),
            type="abono",
            status=ProviderStatus.SUCCEEDED,
            provider_ref=clabe,
            lookup_key=clabe,
            amount=amount,
            occurred_at=_from_millis(settled),
            raw=payload,
        )

    def _orden_event(self, payload: dict[str, Any]) -> ProviderEvent:
        """An order of ours (a refund) settled, came back, or was cancelled."""
        folio = payload.get("id")
        if not (_is_int(folio) or (isinstance(folio, str) and folio.isdigit())):
            raise WebhookRejected("STP order status has no order id")
        estado = str(payload.get("Estado", payload.get("estado"))).upper()
        return ProviderEvent(
            provider=self.name,
            event_id=f"orden:{folio}:{estado}",  # one order may settle, then come back
            type=f"orden.{estado}",
            status=ORDEN_STATUS.get(estado, ProviderStatus.PENDING),
            refund_ref=str(folio),
            raw=payload,
        )

    async def _cuenta(self, method: str, clabe: str, idempotency_key: str) -> dict[str, Any]:
        """Register (PUT) or deregister (DELETE) a CLABE as an account of the company."""
        cuenta: dict[str, Any] = {"empresa": self.empresa, "cuenta": clabe, "rfcCurp": self.rfc}
        if method == "PUT":
            cuenta |= {
                "nombre": ascii_text(self.empresa).upper(),
                "pais": PAIS_MEXICO,
                "fechaConstitucion": self.fecha_constitucion,
            }
        cuenta["firma"] = sign_cadena(self.key, cadena_original(cuenta, CUENTA_FIELDS))
        response = await self.http.request(
            method, CUENTA_PATH, content=stp_json(cuenta), idempotency_key=idempotency_key
        )
        answer = self._body(response)
        code = answer.get("id")
        if (method == "PUT" and code in CUENTA_OK) or (method == "DELETE" and code == 0):
            return answer
        raise self._refused(code, str(answer.get("descripcion") or "no description"))

    def _resultado(self, response: httpx.Response, *, empty_ok: bool = False) -> dict[str, Any]:
        """The `resultado` of an ordenPago answer, or the ProviderError its error id means."""
        resultado = self._body(response).get("resultado")
        if not isinstance(resultado, dict) or not isinstance(resultado.get("id"), int):
            raise ProviderError(self.name, "answered without a resultado id", retryable=True)
        if empty_ok and resultado["id"] == NO_ORDERS:
            return {"id": NO_ORDERS, "lst": []}
        if "descripcionError" in resultado or resultado["id"] <= 0:
            raise self._refused(resultado["id"], str(resultado.get("descripcionError")))
        return resultado

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_client_error:
            raise ProviderError(
                self.name,
                f"answered HTTP {response.status_code}",
                retryable=False,
                # 401/403: outside STP's allowed network, or our setup; else a refusal.
                code="PROVIDER_AUTH" if response.status_code in (401, 403) else INVALID_REQUEST,
            )
        try:
            body = json.loads(response.content, parse_float=str)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderError(self.name, "answered something that is not JSON", retryable=True)
        return body

    def _refused(self, code: object, description: str) -> ProviderError:
        """STP's error id and text as a ProviderError: transient, our firma, or a refusal."""
        message = f"{description} (STP error {code})"
        if description in TRANSIENT_ERRORS:
            return ProviderError(self.name, message, retryable=True)
        if "firma" in description.lower():
            return ProviderError(self.name, message, retryable=False, code="PROVIDER_AUTH")
        return self._invalid(message)

    def _invalid(self, message: str) -> ProviderError:
        return ProviderError(self.name, message, retryable=False, code=INVALID_REQUEST)

    async def aclose(self) -> None:
        await self.http.aclose()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _from_millis(value: object) -> datetime | None:
    """STP's ts* fields are epoch milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, ValueError, OSError):  # out of datetime's range: not a time
        return None
