"""STP payouts: an SPEI transfer out of the company's account (`PUT /ordenPago/registra`).

The order is built and signed once (`prepare_payout`, pure: RSA PKCS#1 v1.5 signing is
deterministic, so the stored bytes are what any replay sends). Its claveRastreo is
Cobro's tracking key: STP refuses a second order with it that day (-1), and the order
an earlier, unanswered try registered is then found by that key (`consOrdEnvRastreo`)
and taken as the answer, never sent again. Settlement comes later by the order-status
callback (LIQUIDACION, DEVOLUCION with a causaDevolucion, CANCELACION), and
`fetch_payout` asks where a transfer is for reconciliation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from app.domain.payouts import return_reason
from providers.base import (
    PayoutRequest,
    PayoutState,
    ProviderError,
    ProviderPayout,
    WireRequest,
)
from providers.http import PspHttp
from providers.stp_wire import (
    CLAVE_DUPLICADA,
    CLAVE_USED,
    NO_ORDERS,
    ORDEN_FIELDS,
    STP_INSTITUTION,
    cadena_original,
    payout_order,
    same_order,
    sign_cadena,
    stp_json,
)

REGISTRA_PATH = "/speiws/rest/ordenPago/registra"
RASTREO_PATH = "/speiws/rest/ordenPago/consOrdEnvRastreo"

# consOrdEnvRastreo `estado` of a sent order -> where the payout is; the rest is in transit.
PAYOUT_STATES = {
    "LQ": PayoutState.PAID,
    "D": PayoutState.RETURNED,
    "CN": PayoutState.FAILED,
    "RB": PayoutState.FAILED,  # rejected by Banxico
}


class StpPayouts:
    """The payout half of the STP adapter (providers/stp.py mixes it in)."""

    name: str
    empresa: str
    cuenta_ordenante: str
    key: RSAPrivateKey
    http: PspHttp

    if TYPE_CHECKING:

        def _resultado(
            self, response: httpx.Response, *, passthrough: tuple[int, ...] | set[int] = ...
        ) -> dict[str, Any]: ...

        def _refused(self, code: object, description: str) -> ProviderError: ...

    def prepare_payout(self, request: PayoutRequest) -> WireRequest:
        order = payout_order(request, empresa=self.empresa, cuenta_ordenante=self.cuenta_ordenante)
        order["firma"] = sign_cadena(self.key, cadena_original(order, ORDEN_FIELDS))
        headers = (("Content-Type", "application/json"),)
        return WireRequest("PUT", REGISTRA_PATH, stp_json(order), headers)

    async def send_payout(self, request: PayoutRequest, wire: WireRequest) -> ProviderPayout:
        resultado = self._resultado(await self.http.send(wire), passthrough={CLAVE_DUPLICADA})
        description = str(resultado.get("descripcionError"))
        if resultado["id"] == CLAVE_DUPLICADA and CLAVE_USED.search(description):
            found = await self.fetch_payout(request)
            if found is None:
                # Used, yet not found: the operating day may have just turned. Money may
                # have moved; a person must look, nothing is sent anywhere else.
                raise ProviderError(
                    self.name,
                    f"{description}; consOrdEnvRastreo finds no order {request.tracking_key}",
                    retryable=False,
                    outcome_unknown=True,
                )
            return found
        if resultado["id"] == CLAVE_DUPLICADA:
            raise self._refused(CLAVE_DUPLICADA, description)
        return ProviderPayout(str(resultado["id"]), PayoutState.IN_TRANSIT, raw=resultado)

    async def fetch_payout(self, request: PayoutRequest) -> ProviderPayout | None:
        """The order sent today under the payout's tracking key, None if there is none;
        ProviderError (not the same order) if the key carried another amount or account."""
        consulta: dict[str, Any] = {
            "empresa": self.empresa,
            "claveRastreo": request.tracking_key,
            "institucionOperante": int(STP_INSTITUTION),
        }
        consulta["firma"] = sign_cadena(self.key, cadena_original(consulta, ORDEN_FIELDS))
        response = await self.http.request("POST", RASTREO_PATH, content=stp_json(consulta))
        found = self._resultado(response, passthrough={NO_ORDERS}).get("ordenPago")
        if not isinstance(found, dict) or found.get("idEF") in (None, ""):
            return None
        if not same_order(found, request.clabe, request.amount.minor):
            raise self._refused(CLAVE_DUPLICADA, "tracking key used for another order")
        estado = str(found.get("estado", "")).strip()
        state = PAYOUT_STATES.get(estado, PayoutState.IN_TRANSIT)
        cause = found.get("causaDevolucion")
        code = return_reason(cause).code if state is PayoutState.RETURNED and cause else None
        return ProviderPayout(str(found["idEF"]), state, return_code=code, raw=found)
