"""STP emulator: account registration, outgoing orders, the day's orders, and callbacks.

It answers providers/stp.py as STP's `/speiws/rest` does in cuenca-mx/stpmex-python's
recorded cassettes: HTTP 200 with STP's own error ids and texts. STP has no API key, so
`check_auth` lets requests through and each endpoint verifies the `firma` over its own
cadena with the sandbox public key (ordenPago: id 0 "Error validando la firma";
cuentaModule: id 1 "Firma Invalida, cuenta: ..."). STP's own idempotency is the
claveRastreo, unique per operating day (id -1); the Idempotency-Key header is ignored.

A CLABE registered here can receive `POST /sandbox/spei/deposits`: the deposit joins the
day's received orders and the abono callback goes to Cobro. A registered order settles by
itself SETTLE_DELAY_SECONDS later (an asyncio task, so the adapter has its folio first):
it turns LQ and the LIQUIDACION callback follows. Callbacks carry Cobro's own
`X-Stp-Signature` (HMAC-SHA256 of the body, see providers/stp.py), since STP signs none.
consOrdEnvRastreo finds one sent order by its claveRastreo, as a retried refund needs.

Accounts, sent and received orders and the day's claves de rastreo live in the sandbox
store (providers/sandbox/store.py), so any process serves them. The settling task is
the one thing a process holds: an order registered moments before its process stops
stays `E` (sent) until someone settles it by hand.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
from collections.abc import Coroutine
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.domain.banks import BANKS
from app.domain.clabe import institution_code, is_valid_clabe, with_check_digit
from app.domain.ids import random_token
from providers.sandbox.common import Emulator, JSONResponse
from providers.sandbox.store import Tx
from providers.stp_wire import (
    CUENTA_FIELDS,
    MAX_CLAVE_RASTREO,
    ORDEN_FIELDS,
    STP_INSTITUTION,
    TIPO_CUENTA_CLABE,
    TIPO_PAGO_TERCERO,
    cadena_original,
    monto_text,
    sign_callback,
    stp_json,
)

# SANDBOX ONLY: a throwaway key pair made for this emulator and published on purpose. The
# adapter signs with the private half, the emulator verifies with the public half. It
# protects nothing; never register it at STP or use it outside the sandbox.
SANDBOX_PRIVATE_PEM = """\
-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAlyiDbovZAgxo+K5WrE4kamjiFLeFNJtM77O5Edf4puPx2mrT
I1c3Kf5uyfsu9Mm5XottY1tIrGqot749xNnFJ4JFzt7xNezU0lcVold+3P1nPrSA
tDNY/zlO9Cb7Z4aEBLQla4vGmd/SK2KIeX/w66XAP59QF7DU8mfn53FPoA1AwjXJ
X85vYEn1Qaaao9TOFn0INZ6xpsQ3DrXto0P/3NcIWcGfa89HOznju9gVElyZ4Cjh
n9DHZCz+pz+sZxCWjQeoRcUT51+QzYDTNOtnBobWJ8YuILLSpzzq5RWy6OOxWC0g
IYi/38AARsqWka2YxRPjZwllrDshGrpn6JrJnwIDAQABAoIBABEnfl71zP9gBCuw
sVJlndlbpMigGSRiuYT8evTM80GRXdmhROveUnrYDp+qe2Y5XGmf3h6n9ePnSNVt
aBomcqrsrFpxT6OEiJSEYIanclTHB0gE+RQ6PY/dY5nusJpLmEDmZtbBKp082t+k
k4NiYyeDDIHL5S2DGm+WHinUYKpzme2Ylb4FzD45iAjJlbvM6PfdDnmlIUUpkhAA
vKSf3K4xngkxXzdWBY0iGimXt5ZWCvTMUTOOZ//MHzBXd8fZKbInEPvfOhvHIUAK
FU8lKhij7qdY9KV7jnU8geSJWhitTvKwEKkYTGL1mCLBKO8pbbz3KRTpTs8LoMeP
DKhr/PUCgYEAx/jRiQnUf2jDJIA/BQ3+RhmHGTEye+rZt8lpCaXHG/psF5mx9DOG
TAAeWXkklH07jmFrtVYlZ5YyvQl9oyFBX1YB/tjuVpMi/I83vG9gBGiQz8Y8NGkO
3ppa2hw06W07impu0/oregPV9hhXDCeE+aKnHKgfnTT5tib2NheOQ1sCgYEAwYJ8
UQsKz7J8zra2iyAiIDgX+xMZakQw4O92nrlwYpmx48NeZBDzrMPI53+CMG7veESu
EAQV2eLML3X65OWbZQRuwlSMUubXVMitcjfa0ZPBJTqj8hhsR97dT6bPlu+fJZqI
OoZvLAj4i2rMAt/LWK4Wli0qMV3JavrugblYeg0CgYAvPv5inkvyflH8wcAh9Zhp
/4YH0bPXyzj9Tzzd5qkQVy5KtSlyROop8q04/oJCAwSbMzE7essDml0KhL+GV0kW
uT9ncuF82u6dNUk54CaTZBEyxedbiqbUuStV9Owbao9yuIrO0oCLJ3TZ3A5U9NFa
Ga/Z+W7eubF18+agCRi3mQKBgCo1YxZuWSpanVydgA2ysZ7jfV+Xl+iU/TBjKzWN
71Sif6nVmIYtKGmbvvu31VbpK7TJDkqSCY4gKTeE/XfmGVIceGhM9tqyXW+x4htS
0Zj7KJsNQmtxJlU66H0SPp+Gnukd3u8dGay6PDR01BEgbYNnXafeLCDeeyupllKX
chQVAoGAHYNB8UKcnIw6RvRGtxsIQix30oSEGv8b1K5Who6Wzt2rsRmM/5MRBXgX
3v7SuhYSV4nRfhoaEX8mHxkNFUSpJWvT/nU7hqayqs2RWMhBiMoPUy4UL5MnOCby
oeiOg71uggyeQYKiCQULzCKxdmrWQ62K6+RSN8MHgtrdnQRolh0=
-----END RSA PRIVATE KEY-----
"""
SANDBOX_PUBLIC_PEM = (
    load_pem_private_key(SANDBOX_PRIVATE_PEM.encode(), password=None)
    .public_key()
    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    .decode()
)

EMPRESA = "COBRO"
CLABE_PREFIX = "6461801234"  # bank 646 (STP), plaza 180, company prefix 1234
# The company's own account, outside the 6461801234xxxxxxx range that attempts get.
CUENTA_ORDENANTE = with_check_digit("64618012350000001")
ADAPTER_OPTIONS = {
    "empresa": EMPRESA,
    "private_key": SANDBOX_PRIVATE_PEM,
    "passphrase": "",
    "clabe_prefix": CLABE_PREFIX,
    "rfc": "COB200101AB1",
    "fecha_constitucion": "20200101",
    "cuenta_ordenante": CUENTA_ORDENANTE,
    "webhook_token": "sandbox-stp-token",
}

STP_CLABE_START = "646180"  # STP accounts: bank 646, plaza 180
# Who pays sandbox deposits: a BBVA CLABE from cuenca-mx/cep-python's README.
PAYER_CLABE, PAYER_INSTITUTION, PAYER_NAME = "012180004643051249", "40012", "CLIENTE SANDBOX"
# Long enough for the adapter to hold the folio before the callback; real SPEI takes seconds.
SETTLE_DELAY_SECONDS = 0.2
# SPEI's operating day is Mexico City's date (no daylight saving there since 2022).
MEXICO_CITY = ZoneInfo("America/Mexico_City")
KNOWN_INSTITUTIONS = frozenset(code for code, _ in BANKS.values())
ORDER_REQUIRED = (
    *("empresa", "claveRastreo", "monto", "institucionContraparte", "cuentaBeneficiario"),
    *("nombreBeneficiario", "cuentaOrdenante", "conceptoPago", "firma"),
)
FIRMA_INVALIDA = "Error validando la firma"
# Contract section 8: the CLABE whose bank returns every transfer (cause 01, account does
# not exist), and the one STP refuses to send to (insufficient funds).
RETURNED_CLABE = "646180000000000025"
REFUSED_CLABE = "646180000000000038"
NO_ACCOUNT_CAUSE = 1
SALDO_INSUFICIENTE = (-4, "Saldo insuficiente")
CENT = Decimal("0.01")


class StpEmulator(Emulator):
    name = "stp"
    ADAPTER_OPTIONS = ADAPTER_OPTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key = load_pem_public_key(SANDBOX_PUBLIC_PEM.encode())
        assert isinstance(key, RSAPublicKey)
        self.public_key = key
        # In the store: "account" CLABE -> {"registered"}; "sent" folio -> outgoing order
        # and "received" claveRastreo -> deposit, both filed under their operating day;
        # "clave" "<day>:<claveRastreo>" -> {"folio"}.

    def routes(self) -> list[BaseRoute]:
        base = "/speiws/rest"
        return [
            Route(f"{base}/cuentaModule/moral", self.alta, methods=["PUT"]),
            Route(f"{base}/cuentaModule/moral", self.baja, methods=["DELETE"]),
            Route(f"{base}/ordenPago/registra", self.registra, methods=["PUT"]),
            Route(f"{base}/ordenPago/consOrdenesFech", self.consulta, methods=["POST"]),
            Route(f"{base}/ordenPago/consOrdEnvRastreo", self.rastreo, methods=["POST"]),
        ]

    def check_auth(self, request: Request) -> Response | None:
        """STP has no bearer key: each endpoint checks the firma over its own fields."""
        return None

    def firma_ok(self, body: dict[str, Any], fields: tuple[str, ...] | list[str]) -> bool:
        try:
            firma = base64.b64decode(str(body.get("firma") or ""), validate=True)
            cadena = cadena_original(body, fields).encode("utf-8")
            self.public_key.verify(firma, cadena, PKCS1v15(), SHA256())
        except (binascii.Error, InvalidSignature):
            return False
        return True

    # -- accounts: the per-attempt CLABEs ------------------------------------------------

    async def alta(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if (problem := self._cuenta_problem(body)) is not None:
            return problem
        return (await self.run(lambda tx: self._alta(tx, str(body["cuenta"]))))[0]

    async def _alta(self, tx: Tx, clabe: str) -> Response:
        account = await tx.get("account", clabe)
        if account and account["registered"]:
            return _cuenta(3, "Cuenta Duplicada")
        tx.put("account", clabe, {"registered": True})
        tx.bind(f"clabe:{clabe}", "account", clabe)
        return _cuenta(0, "Cuenta en revisión.")

    async def baja(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if (problem := self._cuenta_problem(body)) is not None:
            return problem
        return (await self.run(lambda tx: self._baja(tx, str(body["cuenta"]))))[0]

    async def _baja(self, tx: Tx, clabe: str) -> Response:
        if await tx.get("account", clabe) is None:
            return _cuenta(1, f"La cuenta {clabe} no existe")
        tx.put("account", clabe, {"registered": False})
        tx.unbind(f"clabe:{clabe}")  # later transfers go back to their sender
        return _cuenta(0, "")

    def _cuenta_problem(self, body: dict[str, Any]) -> Response | None:
        for field in ("empresa", "cuenta", "rfcCurp", "firma"):
            if not body.get(field):
                return _cuenta(5, f"El campo {field} es obligatorio")
        clabe = str(body["cuenta"])
        if not self.firma_ok(body, CUENTA_FIELDS):
            return _cuenta(1, f"Firma Invalida, cuenta: {clabe}")
        if not (is_valid_clabe(clabe) and clabe.startswith(STP_CLABE_START)):
            return _cuenta(1, "El campo cuenta es invalido")
        return None

    async def receive(self, tx: Tx, key: str, amount: int) -> None:
        """An SPEI transfer of `amount` (minor units) lands at CLABE `key`: list it, tell
        Cobro."""
        abono = self._abono(key, amount)
        received = {
            **{k: abono[k] for k in ("claveRastreo", "cuentaBeneficiario", "monto")},
            **{k: abono[k] for k in ("cuentaOrdenante", "referenciaNumerica", "empresa")},
            **{k: abono[k] for k in ("fechaOperacion", "tipoPago", "tsLiquidacion")},
            "estado": "LQ",
            "institucionContraparte": int(PAYER_INSTITUTION),
            "institucionOperante": int(STP_INSTITUTION),
        }
        tx.put("received", abono["claveRastreo"], received, ref=str(abono["fechaOperacion"]))
        tx.webhook(stp_json(abono))

    def _abono(self, clabe: str, amount_minor: int) -> dict[str, Any]:
        """The abono callback STP posts for a deposit (fields as in public STP samples)."""
        return {
            "id": self._new_id(),
            "fechaOperacion": int(self._today()),
            "institucionOrdenante": PAYER_INSTITUTION,
            "institucionBeneficiaria": STP_INSTITUTION,
            # Unique per payer bank and day, even across sandbox restarts.
            "claveRastreo": f"SBX{random_token(16)}",
            "monto": Decimal(monto_text(amount_minor)),
            "nombreOrdenante": PAYER_NAME,
            "tipoCuentaOrdenante": TIPO_CUENTA_CLABE,
            "cuentaOrdenante": PAYER_CLABE,
            "rfcCurpOrdenante": "ND",
            "nombreBeneficiario": EMPRESA,
            "tipoCuentaBeneficiario": TIPO_CUENTA_CLABE,
            "cuentaBeneficiario": clabe,
            "rfcCurpBeneficiario": "ND",
            "conceptoPago": "PAGO SPEI",
            # The payer types the reference Cobro showed: the CLABE's 7 assigned digits.
            "referenciaNumerica": int(clabe[10:17]),
            "empresa": EMPRESA,
            "tipoPago": TIPO_PAGO_TERCERO,
            "tsLiquidacion": self.state.clock.timestamp() * 1000,
            "folioCodi": None,
        }

    # -- outgoing orders: refunds -----------------------------------------------------

    async def registra(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if (problem := self._order_problem(body)) is not None:
            return _error(*problem)
        folio, response = (await self.run(lambda tx: self._registra(tx, body)))[0]
        if folio is not None:
            self._later(self._settle(folio))
        return response

    async def _registra(self, tx: Tx, body: dict[str, Any]) -> tuple[int | None, Response]:
        day, clave = self._today(), str(body["claveRastreo"])
        if await tx.get("clave", f"{day}:{clave}") is not None:
            return None, _error(
                -1,
                f"La clave de rastreo {{{clave}}} para la fecha {{{day}}} de la institucion "
                f"{{{STP_INSTITUTION}}} ya fue utilizada",
            )
        folio = self._new_id()
        tx.put("clave", f"{day}:{clave}", {"folio": folio})
        order = {k: v for k, v in body.items() if k != "firma"}
        sent = {**order, "id": folio, "estado": "E", "fechaOperacion": int(day)}
        tx.put("sent", str(folio), sent, ref=day)
        return folio, _stp_response({"resultado": {"id": folio}})

    def _order_problem(self, body: dict[str, Any]) -> tuple[int, str] | None:
        """STP's error for an order it refuses, in the order STP checks: None if it is fine."""
        for field in ORDER_REQUIRED:
            if body.get(field) in (None, ""):
                return 0, f"El campo {field} es obligatorio"
        if not self.firma_ok(body, ORDEN_FIELDS):
            return 0, FIRMA_INVALIDA
        clave, monto = str(body["claveRastreo"]), body["monto"]
        if not (clave.isascii() and clave.isalnum() and len(clave) <= MAX_CLAVE_RASTREO):
            return -34, "Clave rastreo invalida"
        if not _is_centavos(monto):
            return -20, f"El monto {{{monto}}} no es válido"
        cuenta, institucion = str(body["cuentaBeneficiario"]), str(body["institucionContraparte"])
        if institucion not in KNOWN_INSTITUTIONS:
            return -9, f"La Institucion {institucion} no es valida"
        if not is_valid_clabe(cuenta) or institution_code(cuenta) != institucion:
            return -22, f"La cuenta {cuenta} no coincide para la institucion operante {institucion}"
        if cuenta == str(body["cuentaOrdenante"]):
            return -24, f"Cuenta {{{cuenta}}} - {{MISMA_CUENTA}}"
        if cuenta == REFUSED_CLABE:
            return SALDO_INSUFICIENTE
        return None

    async def _settle(self, folio: int) -> None:
        """The order went through SPEI: STP marks it LQ and posts LIQUIDACION."""
        await asyncio.sleep(SETTLE_DELAY_SECONDS)
        await self.run(lambda tx: self._liquidate(tx, folio))

    async def _liquidate(self, tx: Tx, folio: int) -> None:
        sent = await tx.get("sent", str(folio))
        if sent is None or sent["estado"] != "E":
            return
        if str(sent["cuentaBeneficiario"]) == RETURNED_CLABE:
            self._devolver(tx, folio, sent, NO_ACCOUNT_CAUSE)
            return
        sent |= {"estado": "LQ", "tsLiquidacion": self.state.clock.timestamp() * 1000}
        tx.put("sent", str(folio), sent, ref=str(sent["fechaOperacion"]))
        tx.webhook(stp_json({"id": folio, "Estado": "LIQUIDACION", "Detalle": ""}))

    def _devolver(self, tx: Tx, folio: int, sent: dict[str, Any], cause: int) -> None:
        """The receiving bank sends the transfer back: D, and the DEVOLUCION callback."""
        sent |= {"estado": "D", "causaDevolucion": cause}
        tx.put("sent", str(folio), sent, ref=str(sent["fechaOperacion"]))
        body = {"id": folio, "Estado": "DEVOLUCION", "Detalle": "", "causaDevolucion": cause}
        tx.webhook(stp_json(body))

    async def return_paid(self, clave: str, cause: int) -> str | None:
        """`POST /sandbox/spei/payouts/{trackingKey}/return`: the bank returns a paid
        transfer sent today; None when done, else why not."""

        async def devolver(tx: Tx) -> str | None:
            registered = await tx.get("clave", f"{self._today()}:{clave}")
            sent = await tx.get("sent", str(registered["folio"])) if registered else None
            if registered is None or sent is None:
                return f"no transfer with tracking key {clave!r} was sent today"
            if sent["estado"] != "LQ":
                return f"transfer {clave!r} is {sent['estado']}, not paid (LQ)"
            self._devolver(tx, registered["folio"], sent, cause)
            return None

        return (await self.run(devolver))[0]

    async def cep(self, query: dict[str, str]) -> str | None:
        """The CEP stand-in: Banxico's XML for a paid transfer found by its lookup fields
        (fecha dd-mm-yyyy, criterio = tracking key, receptor, cuenta, monto); None if
        no such transfer was paid."""
        try:
            day = datetime.strptime(query.get("fecha", ""), "%d-%m-%Y").strftime("%Y%m%d")
        except ValueError:
            return None
        registered = await self.store.get(self.name, "clave", f"{day}:{query.get('criterio')}")
        order = (
            await self.store.get(self.name, "sent", str(registered.body["folio"]))
            if (registered)
            else None
        )
        if order is None or "tsLiquidacion" not in order.body:
            return None
        sent = order.body
        matches = (
            str(sent["cuentaBeneficiario"]) == query.get("cuenta")
            and str(sent["institucionContraparte"]) == query.get("receptor")
            and Decimal(str(sent["monto"])) == Decimal(query.get("monto") or "-1")
        )
        return _cep_xml(sent) if matches else None

    # -- queries ---------------------------------------------------------------------

    async def consulta(self, request: Request) -> Response:
        """consOrdenesFech: the orders received (estado R) or sent (E) on one operating day."""
        body = await self._query_body(request)
        if isinstance(body, Response):
            return body
        day = str(body.get("fechaOperacion") or self._today())
        kind = "received" if body.get("estado") == "R" else "sent"
        listed = [doc.body for _, doc in await self.store.find(self.name, kind, day)]
        if not listed:
            return _error(-100, "No se encontraron ordenes")
        return _stp_response({"resultado": {"id": 1, "lst": listed}})

    async def rastreo(self, request: Request) -> Response:
        """consOrdEnvRastreo: one order we sent, by claveRastreo, on one operating day; STP
        calls the folio registraOrden answered `idEF` here."""
        body = await self._query_body(request)
        if isinstance(body, Response):
            return body
        day, clave = str(body.get("fechaOperacion") or self._today()), str(body.get("claveRastreo"))
        registered = await self.store.get(self.name, "clave", f"{day}:{clave}")
        folio = registered.body["folio"] if registered else None
        order = await self.store.get(self.name, "sent", str(folio)) if folio else None
        if order is None:
            return _error(-100, f"No se encontró la orden con rastreo {clave}")
        found = {**{k: v for k, v in order.body.items() if k != "id"}, "idEF": folio}
        return _stp_response({"resultado": {"id": 1, "ordenPago": found}})

    # -- plumbing --------------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        """Auth first (Emulator.guard), then the body as a JSON object."""
        if (refused := await self.guard(request)) is not None:
            return refused
        body = await _json(request)
        return _not_json() if body is None else body

    async def _query_body(self, request: Request) -> dict[str, Any] | Response:
        """A query's body (consulta, rastreo) once its signature checks out."""
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if not body.get("empresa") or not self.firma_ok(body, ORDEN_FIELDS):
            return _error(0, FIRMA_INVALIDA)
        return body

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {"X-Stp-Signature": sign_callback(body, self.webhook_secret)}

    def _today(self) -> str:
        return _operating_day(self.state.clock.now())

    def _new_id(self) -> int:
        """A folio or abono id: random, so no two processes hand out the same one (a
        folio another order has is a Conflict at commit, and the call runs again)."""
        return 10**8 + secrets.randbelow(9 * 10**8)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after this answer, keeping a reference so it is not collected."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._done)


def _cep_xml(sent: dict[str, Any]) -> str:
    """A CEP as Banxico's XML shapes it (cuenca-mx/cep-python: Ordenante, Beneficiario,
    Concepto, Hora, sello); the seal is the sandbox's, not Banxico's."""
    paid = datetime.fromtimestamp(sent["tsLiquidacion"] / 1000, MEXICO_CITY)
    text = {k: escape(str(sent.get(k, "")), {'"': "&quot;"}) for k in sent}
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SPEI_Tercero FechaOperacion="{paid:%Y-%m-%d}" Hora="{paid:%H:%M:%S}" '
        f'ClaveSPEI="{STP_INSTITUTION}" sello="SANDBOX" '
        f'claveRastreo="{text["claveRastreo"]}">\n'
        f'  <Beneficiario BancoReceptor="{text["institucionContraparte"]}" '
        f'Nombre="{text["nombreBeneficiario"]}" TipoCuenta="40" '
        f'Cuenta="{text["cuentaBeneficiario"]}" RFC="{text.get("rfcCurpBeneficiario", "ND")}" '
        f'Concepto="{text["conceptoPago"]}" IVA="0.00" MontoPago="{text["monto"]}"/>\n'
        f'  <Ordenante BancoEmisor="STP" Nombre="{text["empresa"]}" TipoCuenta="40" '
        f'Cuenta="{text["cuentaOrdenante"]}"/>\n'
        "</SPEI_Tercero>\n"
    )


def _operating_day(now: datetime) -> str:
    return now.astimezone(MEXICO_CITY).strftime("%Y%m%d")


def _is_centavos(monto: object) -> bool:
    """A positive amount with at most two decimals, as SPEI moves money."""
    if isinstance(monto, bool) or not isinstance(monto, Decimal | int):
        return False
    try:
        return monto > 0 and Decimal(monto) == Decimal(monto).quantize(CENT)
    except InvalidOperation:
        return False


async def _json(request: Request) -> dict[str, Any] | None:
    """The body as STP's Java side reads it: amounts as exact Decimals."""
    try:
        body = json.loads(await request.body(), parse_float=Decimal)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _stp_response(payload: dict[str, Any]) -> Response:
    return Response(stp_json(payload), media_type="application/json")


def _error(code: int, description: str) -> Response:
    """ordenPago's refusal: HTTP 200, an id of 0 or less and a description."""
    return _stp_response({"resultado": {"descripcionError": description, "id": code}})


def _cuenta(code: int, description: str) -> Response:
    """cuentaModule's answer: id 0 is success, anything else a refusal."""
    return JSONResponse({"descripcion": description, "id": code})


def _not_json() -> Response:
    return JSONResponse({"error": "the body is not a JSON object"}, status_code=400)
