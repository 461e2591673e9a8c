"""STP (Sistema de Transferencias y Pagos): SPEI pay-ins to per-attempt CLABEs, SPEI refunds.

STP's REST API (`/speiws/rest` on https://demo.stpmex.com:7024 or https://prod.stpmex.com)
has no API key: each request carries a `firma` over a "cadena original" (providers/stp_wire.py
builds both), and errors come back as HTTP 200 with STP's own ids (stpmex-python `client.py`).

Pay-in: each attempt gets its own CLABE, `clabe_prefix` + the reference number's last 7
digits + check digit, registered as an account of the company (`PUT /cuentaModule/moral`,
firma over `||empresa|cuenta|rfcCurp||`) because STP takes transfers only to registered
accounts; the money arrives by the "abono" callback. A prefix holds 10^7 CLABEs, so
reference numbers must not wrap onto one that may still receive money. STP cannot limit
who pays into a CLABE, so `payer_clabe` is not sent (the abono's `cuentaOrdenante` says
who paid). Cancel deregisters the CLABE (`DELETE`), so SPEI returns late transfers.
Refund: an outgoing order (`PUT /ordenPago/registra`), settled later by a callback. Its
claveRastreo comes from the refund id, so a retry whose first try reached STP is refused
as a duplicate (-1); the order is then found by that key (`consOrdEnvRastreo`).

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
network, and by the sandbox), or `X-Webhook-Token` equal to `webhook_token`, which the
webhook route copies from the `?token=` of the URL registered at STP (public integrations
put such a secret in the callback path). Compared as bytes, in constant time; an empty
secret never matches. No timestamp: a replayed callback has the same event id, applied once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from app.domain.clabe import validate_clabe
from app.domain.errors import InvalidAmount
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency
from app.domain.next_action import SpeiInstructions
from providers.base import (
    INVALID_REQUEST,
    Deposit,
    MalformedEvent,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderEvent,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    WireRequest,
)
from providers.http import PspHttp
from providers.shapes import (
    MAX_EPOCH_SECONDS,
    MAX_HANDLE,
    Fields,
    Malformed,
    check_integer,
    load_json,
)
from providers.stp_payouts import StpPayouts
from providers.stp_wire import (
    CLAVE_DUPLICADA,
    CLAVE_USED,
    CUENTA_FIELDS,
    CUENTA_OK,
    NO_ORDERS,
    ORDEN_FIELDS,
    ORDEN_STATUS,
    PAIS_MEXICO,
    RECEIVED_STATUS,
    REFERENCE_DIGITS,
    SENT_STATUS,
    STP_INSTITUTION,
    TRANSIENT_ERRORS,
    abono_event_id,
    abono_reply,
    ascii_text,
    assigned_clabe,
    cadena_original,
    listed_abono_id,
    load_signing_key,
    malformed_reply,
    parse_monto,
    refund_order,
    same_order,
    sign_cadena,
    stp_json,
    verify_callback,
)

REGISTRA_PATH = "/speiws/rest/ordenPago/registra"
CONSULTA_PATH = "/speiws/rest/ordenPago/consOrdenesFech"
RASTREO_PATH = "/speiws/rest/ordenPago/consOrdEnvRastreo"
CUENTA_PATH = "/speiws/rest/cuentaModule/moral"

RECEIVED = "R"  # consOrdenesFech `estado`: orders we received (E: sent)
CLABE_PREFIX_DIGITS = 10  # bank 646 + plaza 180 + the company's 4 digits; 7 are ours to assign
MAX_FOLIO = 10**18 - 1  # STP's order ids are Java longs; ours are far shorter
MAX_ESTADO = 40  # LIQUIDACION, DEVOLUCION, CANCELACION, EXITO...

# Options a misconfigured deployment should fail on at start-up, not at STP's first refusal.
REQUIRED_OPTIONS = (
    "empresa",
    "private_key",
    "clabe_prefix",
    "rfc",
    "fecha_constitucion",
    "cuenta_ordenante",
)


class StpProvider(StpPayouts):
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

    def prepare_payment(self, request: PaymentRequest, idempotency_key: str) -> WireRequest:
        if request.method is not PaymentMethodType.SPEI or request.reference_number is None:
            raise self._invalid("serves SPEI with a reference number only")
        clabe = assigned_clabe(self.clabe_prefix, request.reference_number)
        return self._cuenta_wire("PUT", clabe, idempotency_key)

    async def send_payment(self, request: PaymentRequest, wire: WireRequest) -> ProviderPayment:
        assert request.reference_number is not None
        clabe = assigned_clabe(self.clabe_prefix, request.reference_number)
        answer = self._cuenta_answer("PUT", await self.http.send(wire))
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

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment:
        return await self.send_payment(request, self.prepare_payment(request, idempotency_key))

    async def search_payments(self, intent_id: str) -> None:
        """STP keeps nothing of ours but the CLABE: there is no search by intent."""
        return None

    async def fetch_payment(self, provider_ref: str) -> ProviderPayment:
        """What STP lists as received today at this CLABE (consOrdenesFech covers one
        operating day; earlier deposits are known from their callbacks)."""
        consulta: dict[str, Any] = {"empresa": self.empresa, "estado": RECEIVED}
        consulta["firma"] = sign_cadena(self.key, cadena_original(consulta, ORDEN_FIELDS))
        response = await self.http.request("POST", CONSULTA_PATH, content=stp_json(consulta))
        resultado = self._resultado(response, passthrough={NO_ORDERS})
        orders = [
            o
            for o in resultado.get("lst") or []
            if isinstance(o, dict) and str(o.get("cuentaBeneficiario")).strip() == provider_ref
        ]
        return self._received(provider_ref, orders)

    def _received(self, clabe: str, orders: list[dict[str, Any]]) -> ProviderPayment:
        """The received orders at `clabe` as a payment: each settled one a Deposit named
        as its abono callback is named, so the core counts it once."""
        estados = [RECEIVED_STATUS.get(str(o.get("estado")).strip()) for o in orders]
        settled = [o for o, e in zip(orders, estados, strict=True) if e is ProviderStatus.SUCCEEDED]
        try:
            deposits = tuple(
                Deposit(listed_abono_id(o), parse_monto(o.get("monto"))) for o in settled
            )
        except InvalidAmount as exc:
            message = f"listed a bad monto: {exc.message}"
            raise ProviderError(self.name, message, retryable=True) from exc
        except KeyError as exc:
            message = f"listed a received order without {exc}"
            raise ProviderError(self.name, message, retryable=True) from None
        paid = sum(d.amount for d in deposits)
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
            deposits=deposits,
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
        resultado = self._resultado(response, passthrough={CLAVE_DUPLICADA})
        description = str(resultado.get("descripcionError"))
        if resultado["id"] == CLAVE_DUPLICADA and CLAVE_USED.search(description):
            # The claveRastreo is this refund's own: an earlier try reached STP, its
            # answer was lost. STP ignores Idempotency-Key; the key is its idempotency.
            return await self._registered_refund(order, request.amount.minor, resultado)
        if resultado["id"] == CLAVE_DUPLICADA:
            raise self._refused(CLAVE_DUPLICADA, description)
        return ProviderRefund(
            provider_ref=str(resultado["id"]), status=ProviderStatus.PENDING, raw=resultado
        )

    async def _registered_refund(
        self, order: dict[str, Any], minor: int, refusal: dict[str, Any]
    ) -> ProviderRefund:
        """The `order` an earlier try registered today, found by its claveRastreo
        (consOrdEnvRastreo, stpmex-python `_consulta_clave_rastreo_enviada`)."""
        clave = order["claveRastreo"]
        consulta: dict[str, Any] = {
            "empresa": self.empresa,
            "claveRastreo": clave,
            "institucionOperante": int(STP_INSTITUTION),
        }
        consulta["firma"] = sign_cadena(self.key, cadena_original(consulta, ORDEN_FIELDS))
        response = await self.http.request("POST", RASTREO_PATH, content=stp_json(consulta))
        found = self._resultado(response, passthrough={NO_ORDERS}).get("ordenPago")
        duplicate = self._refused(refusal["id"], str(refusal.get("descripcionError")))
        if not isinstance(found, dict) or found.get("idEF") in (None, ""):
            # Used, yet not found: the operating day may have just turned. Money may have
            # moved, and a new try could send it twice: a person must look.
            message = f"{duplicate.message}; consOrdEnvRastreo finds no order {clave}"
            raise ProviderError(self.name, message, retryable=False, outcome_unknown=True)
        if not same_order(found, order["cuentaBeneficiario"], minor):
            raise duplicate  # the key was used for another amount or account
        estado = str(found.get("estado", "")).strip()
        return ProviderRefund(
            provider_ref=str(found["idEF"]),
            status=SENT_STATUS.get(estado, ProviderStatus.PENDING),
            raw=found,
        )

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]:
        verify_callback(headers, body, self.config.webhook_secrets, self.webhook_token)
        payload: Any = None
        try:
            # Montos stay exact, and a number is never mistaken for text (an id part).
            payload = load_json(body, parse_float=Decimal)
            callback = Fields(payload, "callback")
            if callback.has("cuentaBeneficiario"):
                return [self._abono_event(callback)]
            if callback.has("Estado") or callback.has("estado"):
                return [self._orden_event(callback)]
            raise Malformed("callback", "is neither an abono nor an order status")
        except Malformed as exc:
            reply = malformed_reply(payload)
            raise MalformedEvent(f"not an STP callback: {exc}", reply=reply) from None

    def webhook_ack(self, events: list[ProviderEvent]) -> dict[str, Any]:
        """The 200 body STP expects for a callback the webhook route accepted."""
        return abono_reply(events[0] if events else None)

    def _abono_event(self, abono: Fields) -> ProviderEvent:
        """A transfer landed at one of our CLABEs (abono_event_id says how it is named)."""
        clabe = abono.text("cuentaBeneficiario", max_length=MAX_HANDLE).strip()
        if not clabe:
            raise Malformed("callback.cuentaBeneficiario", "is blank")
        try:
            amount = parse_monto(abono.raw("monto"))
        except InvalidAmount as exc:
            raise Malformed("callback.monto", exc.message) from None
        return ProviderEvent(
            provider=self.name,
            event_id=abono_event_id(abono),
            type="abono",
            status=ProviderStatus.SUCCEEDED,
            provider_ref=clabe,
            lookup_key=clabe,
            amount=amount,
            occurred_at=_from_millis(abono),
            raw=dict(abono.values),
        )

    def _orden_event(self, payload: Fields) -> ProviderEvent:
        """An order of ours (a refund) settled, came back, or was cancelled."""
        folio = _folio(payload)
        key = "Estado" if payload.has("Estado") else "estado"
        estado = payload.text(key, max_length=MAX_ESTADO).upper()
        cause = payload.raw("causaDevolucion") if payload.has("causaDevolucion") else None
        return ProviderEvent(
            provider=self.name,
            event_id=f"orden:{folio}:{estado}",  # one order may settle, then come back
            type=f"orden.{estado}",
            status=ORDEN_STATUS.get(estado, ProviderStatus.PENDING),
            refund_ref=folio,
            return_code=_return_cause(cause),
            raw=dict(payload.values),
        )

    async def _cuenta(self, method: str, clabe: str, idempotency_key: str) -> dict[str, Any]:
        """Register (PUT) or deregister (DELETE) a CLABE as an account of the company."""
        wire = self._cuenta_wire(method, clabe, idempotency_key)
        return self._cuenta_answer(method, await self.http.send(wire))

    def _cuenta_wire(self, method: str, clabe: str, idempotency_key: str) -> WireRequest:
        cuenta: dict[str, Any] = {"empresa": self.empresa, "cuenta": clabe, "rfcCurp": self.rfc}
        if method == "PUT":
            cuenta |= {
                "nombre": ascii_text(self.empresa).upper(),
                "pais": PAIS_MEXICO,
                "fechaConstitucion": self.fecha_constitucion,
            }
        cuenta["firma"] = sign_cadena(self.key, cadena_original(cuenta, CUENTA_FIELDS))
        headers = (("Content-Type", "application/json"), ("Idempotency-Key", idempotency_key))
        return WireRequest(method, CUENTA_PATH, stp_json(cuenta), headers)

    def _cuenta_answer(self, method: str, response: httpx.Response) -> dict[str, Any]:
        answer = self._body(response)
        code = answer.get("id")
        if not _is_int(code):
            # Not STP's answer to a cuenta call: neither done nor refused as far as we know.
            raise ProviderError(self.name, "answered without an id", retryable=True)
        if (method == "PUT" and code in CUENTA_OK) or (method == "DELETE" and code == 0):
            return answer
        raise self._refused(code, str(answer.get("descripcion") or "no description"))

    def _resultado(
        self, response: httpx.Response, *, passthrough: Collection[int] = ()
    ) -> dict[str, Any]:
        """The `resultado` of an ordenPago answer, or the ProviderError its error id means;
        error ids in `passthrough` come back as answers, for the caller to handle."""
        resultado = self._body(response).get("resultado")
        if not isinstance(resultado, dict) or not _is_int(resultado.get("id")):
            raise ProviderError(self.name, "answered without a resultado id", retryable=True)
        if resultado["id"] in passthrough:
            return resultado
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


def _folio(payload: Fields) -> str:
    """The order id STP gave a refund (registraOrden's `resultado.id`): a positive
    integer, sent as a number or as its digits."""
    folio = payload.raw("id")
    if isinstance(folio, str) and folio.isascii() and folio.isdigit() and len(folio) <= 19:
        folio = int(folio)
    return str(check_integer(folio, "callback.id", minimum=1, maximum=MAX_FOLIO))


def _return_cause(cause: object) -> str | None:
    """STP's causaDevolucion (1, "01") as SPEI's two digits; Malformed if it is not one."""
    if cause is None:
        return None
    text = str(cause).strip()
    if isinstance(cause, bool) or not (text.isascii() and text.isdigit() and len(text) <= 2):
        raise Malformed("callback.causaDevolucion", "is not a SPEI return cause")
    return text.zfill(2)


def _from_millis(abono: Fields) -> datetime | None:
    """STP's tsLiquidacion: epoch milliseconds, when it is sent."""
    millis = abono.optional_integer("tsLiquidacion", minimum=0, maximum=MAX_EPOCH_SECONDS * 1000)
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)
