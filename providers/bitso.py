"""Bitso: crypto pay-ins settled in pesos, through conversion quotes (docs.bitso.com).

A quote (`POST /api/v4/currency_conversions`, receive_amount in MXN, our Idempotency-Key) fixes
the pesos and says how much crypto to send (`from_amount`) at which `rate` until `expires`; the
funding destination (`GET /api/v3/funding_destination`) says where. `GET /api/v3/fundings` and
`GET /api/v4/currency_conversions/{id}` tell what arrived; the `funding` webhook, verified with
Bitso's RSA signature, tells it first. Calls are signed as Bitso's "Create Signed Requests" and
bitso-py's `_build_auth_header` sign them: `Authorization: Bitso <key>:<nonce>:<hex
HMAC-SHA256(secret, nonce + method + path with query + JSON body)>`. Both signatures live in
providers/bitso_wire.py.

Two things a pay-in needs are not in Bitso's API; the sandbox does both, production must not
count on it:
- an address per payment. A Bitso address belongs to the account (Bitso has no `quote_id`
  parameter): production needs a destination tag or memo per payment, where the network has
  one (the tag then joins the address in the lookup key), or a subaccount per customer.
- the conversion. A deposit credits crypto and a quote lasts 30 s: production executes a fresh
  conversion (PUT /api/v4/currency_conversions/{id}) when the funding completes, at its own risk
  on the rate shown. The sandbox reports it in the funding's `details.conversion`, and the
  pesos credited are read from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote as quote_path

import httpx

from app.domain.methods import PaymentMethodType
from app.domain.money import Currency
from app.domain.next_action import CryptoInstructions
from providers.base import (
    IDEMPOTENCY_MISMATCH,
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
from providers.bitso_wire import PUBLIC_KEYS_OPTION, BitsoAuth, load_public_keys, verify_signature
from providers.http import PspHttp, json_body
from providers.shapes import MAX_EVENT_TYPE, Fields, Malformed, check_text

# Bitso's codes for a quote it no longer knows (its RFQ API: `quote_not_found`): the
# contract's QUOTE_EXPIRED.
QUOTE_EXPIRED = "QUOTE_EXPIRED"
QUOTE_GONE_CODES = frozenset({"quote_not_found", "quote_expired"})
# Its answer to an Idempotency-Key first used with another body.
KEY_REUSED_CODES = frozenset({"idempotency_key_reused"})

FUNDINGS_PAGE = 100  # the most recent fundings fetch_payment reads: Bitso's largest page
CENT = Decimal("0.01")
# An amount string longer than this, or above 10^12 units, is not an amount.
MAX_AMOUNT_TEXT = 40
MAX_AMOUNT_EXPONENT = 12
MAX_FID = 120  # a funding id (32 hex digits in Bitso's examples) and ...
MAX_STATUS = 40  # ... its status make the event id, within the inbox's 200

COMPLETE = "complete"  # the funding status under which the deposit is credited
FUNDING_STATUS_MAP = {
    "pending": ProviderStatus.PROCESSING,
    COMPLETE: ProviderStatus.SUCCEEDED,
    "failed": ProviderStatus.FAILED,
}

# A conversion quote: OPEN/QUEUED/COMPLETED/FAILED as Bitso's v4 conversions report them, and
# EXPIRED for a quote that lapsed unpaid (the sandbox reports it, as Bitso's RFQ quotes do).
CONVERSION_STATUS_MAP = {
    "OPEN": ProviderStatus.REQUIRES_ACTION,
    "QUEUED": ProviderStatus.PROCESSING,
    "COMPLETED": ProviderStatus.SUCCEEDED,
    "FAILED": ProviderStatus.FAILED,
    "EXPIRED": ProviderStatus.EXPIRED,
}


class BitsoProvider:
    name = "bitso"
    methods = frozenset({PaymentMethodType.CRYPTO})

    def __init__(
        self, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.http = PspHttp(self.name, config, transport=transport)
        self.auth = BitsoAuth(config.api_key, config.api_secret)
        self.public_keys = load_public_keys(config.options.get(PUBLIC_KEYS_OPTION, ""))

    def prepare_payment(self, request: PaymentRequest, idempotency_key: str) -> WireRequest:
        """The quote request; the call's signature is added when it is sent."""
        asset, _ = self._crypto_of(request)
        payload = {
            "from_currency": asset.lower(),
            "to_currency": "mxn",
            "receive_amount": request.amount.to_decimal_string(),
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = (("Content-Type", "application/json"), ("Idempotency-Key", idempotency_key))
        return WireRequest("POST", "/api/v4/currency_conversions", body, headers)

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment:
        return await self.send_payment(request, self.prepare_payment(request, idempotency_key))

    async def search_payments(self, intent_id: str) -> None:
        """A quote carries no reference of ours: Bitso cannot be searched by intent."""
        return None

    async def send_payment(self, request: PaymentRequest, wire: WireRequest) -> ProviderPayment:
        asset, network = self._crypto_of(request)
        quote = self._payload(await self.http.send(wire, auth=self.auth))
        if not isinstance(quote, dict) or not isinstance(quote.get("id"), str):
            raise ProviderError(self.name, "answered a quote without an id", retryable=True)
        destination = await self._call(
            "GET",
            "/api/v3/funding_destination",
            params={"fund_currency": asset.lower(), "network": network, "quote_id": quote["id"]},
        )
        return self._payment_from_quote(quote, destination, asset, network)

    def _crypto_of(self, request: PaymentRequest) -> tuple[str, str]:
        if request.amount.currency is not Currency.MXN:
            raise self._refused(f"quotes pesos only, not {request.amount.currency}")
        if not request.crypto_asset or not request.crypto_network:
            raise self._refused("a crypto payment needs crypto_asset and crypto_network")
        return request.crypto_asset.upper(), request.crypto_network.lower()

    def _payment_from_quote(
        self, quote: dict[str, Any], destination: Any, asset: str, network: str
    ) -> ProviderPayment:
        try:
            address = str(destination["account_identifier"])
            instructions = CryptoInstructions(
                asset=asset,
                network=network,
                address=address,
                crypto_amount=decimal_string(quote["from_amount"]),
                rate=decimal_string(quote["rate"]),
                quote_expires_at=from_millis(quote["expires"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(
                self.name, f"answered a quote Cobro cannot read ({exc!r})", retryable=True
            ) from None
        return ProviderPayment(
            provider_ref=quote["id"],
            status=ProviderStatus.REQUIRES_ACTION,
            next_action=instructions,
            lookup_keys=(address,),
            raw={"quote": quote, "funding_destination": destination},
        )

    async def fetch_payment(self, provider_ref: str) -> ProviderPayment:
        """The fundings converted under this quote; without any, the quote itself."""
        fundings = await self._call("GET", "/api/v3/fundings", params={"limit": FUNDINGS_PAGE})
        mine = [
            f
            for f in (fundings if isinstance(fundings, list) else [])
            if isinstance(f, dict) and conversion_of(f).get("quote_id") == provider_ref
        ]
        statuses = {f.get("status") for f in mine}
        if "complete" in statuses or "pending" in statuses:
            return self._payment_from_fundings(provider_ref, mine)
        quote = await self._call(
            "GET", f"/api/v4/currency_conversions/{quote_path(provider_ref, safe='')}"
        )
        status = quote.get("status") if isinstance(quote, dict) else None
        return ProviderPayment(
            provider_ref=provider_ref,
            status=CONVERSION_STATUS_MAP.get(str(status), ProviderStatus.PENDING),
            raw={"quote": quote},
        )

    def _payment_from_fundings(
        self, quote_id: str, fundings: list[dict[str, Any]]
    ) -> ProviderPayment:
        """Each complete funding is a Deposit named as its `complete` webhook is named, so
        the core counts it once however it learns of it."""
        complete = [f for f in fundings if f.get("status") == COMPLETE]
        try:
            deposits = tuple(
                Deposit(
                    funding_event_id(f.get("fid"), COMPLETE),
                    centavos(conversion_of(f).get("to_amount")),
                )
                for f in complete
            )
        except ValueError as exc:
            raise ProviderError(
                self.name, f"answered a funding Cobro cannot read ({exc})", retryable=True
            ) from None
        addresses = {_str_or_none(details_of(f).get("receiving_address")) for f in fundings}
        return ProviderPayment(
            provider_ref=quote_id,
            status=ProviderStatus.SUCCEEDED if complete else ProviderStatus.PROCESSING,
            amount_received=sum(d.amount for d in deposits) if complete else None,
            lookup_keys=tuple(sorted(a for a in addresses if a)),
            deposits=deposits,
            raw={"fundings": fundings},
        )

    async def cancel_payment(self, provider_ref: str, idempotency_key: str) -> ProviderPayment:
        # Bitso has nothing to cancel: an unexecuted quote just expires, and the address cannot
        # refuse a deposit. A deposit after this is still reported (and must be refunded).
        return ProviderPayment(provider_ref=provider_ref, status=ProviderStatus.CANCELED)

    async def refund(self, request: RefundRequest, idempotency_key: str) -> ProviderRefund:
        # The merchant was credited pesos: the customer gets pesos back by SPEI (the SPEI
        # provider), not crypto sent to an address we cannot vouch for.
        raise self._refused("refund crypto payments by SPEI")

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]:
        """Bitso's scheme signs the payload without a timestamp, so `now` plays no part:
        a replay is the same event, which the core's inbox applies once."""
        envelope = verify_signature(body, headers, self.public_keys)
        try:
            kind = check_text(envelope["event"], "event", max_length=MAX_EVENT_TYPE)
            if kind != "funding":
                event_id = f"{kind}:{hashlib.sha256(body).hexdigest()[:32]}"
                return [ProviderEvent(self.name, event_id, kind, None, raw=envelope)]
            return [self._funding_event(Fields(envelope["payload"], "payload"), envelope)]
        except Malformed as exc:
            raise MalformedEvent(f"not a Bitso event: {exc}") from None

    def _funding_event(self, payload: Fields, envelope: dict[str, Any]) -> ProviderEvent:
        """A funding (docs.bitso.com "Event Payloads": fid, status, details...)."""
        fid = payload.text("fid", max_length=MAX_FID)
        status = payload.text("status", max_length=MAX_STATUS)
        details = payload.optional_fields("details")
        conversion = details.optional_fields("conversion") if details else None
        neutral = FUNDING_STATUS_MAP.get(status, ProviderStatus.PENDING)
        amount = None
        if neutral is ProviderStatus.SUCCEEDED and conversion and conversion.has("to_amount"):
            try:
                amount = centavos(conversion.raw("to_amount"))
            except ValueError as exc:
                raise Malformed("payload.details.conversion.to_amount", str(exc)) from None
        return ProviderEvent(
            provider=self.name,
            # pending and complete are two events of one funding: both must reach the core.
            event_id=funding_event_id(fid, status),
            type="funding",
            status=neutral,
            provider_ref=conversion.optional_text("quote_id") if conversion else None,
            lookup_key=details.optional_text("receiving_address") if details else None,
            amount=amount,
            occurred_at=_iso_or_none(payload.raw("created_at")),
            # No intent_hint: neither a quote nor a funding carries a reference of ours
            # (Bitso's conversions take none), in Bitso's API or in the sandbox.
            raw=envelope,
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One signed call: Bitso's `payload` on success, a ProviderError otherwise."""
        kwargs: dict[str, Any] = {"auth": self.auth, "params": params}
        if payload is not None:
            kwargs["content"] = json.dumps(payload, separators=(",", ":")).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        response = await self.http.request(method, path, idempotency_key=idempotency_key, **kwargs)
        return self._payload(response)

    def _payload(self, response: httpx.Response) -> Any:
        body = json_body(self.name, response)
        if response.is_success and not isinstance(body.get("success"), bool):
            # Not Bitso's envelope: what it did, if anything, is not known.
            raise ProviderError(
                self.name, "answered without its success flag", retryable=True, outcome_unknown=True
            )
        if response.status_code >= 400 or body.get("success") is not True:
            raise _api_error(self.name, response.status_code, body)
        return body.get("payload")

    def _refused(self, message: str) -> ProviderError:
        return ProviderError(self.name, message, retryable=False, code=INVALID_REQUEST)

    async def aclose(self) -> None:
        await self.http.aclose()


def _api_error(provider: str, status: int, body: Mapping[str, Any]) -> ProviderError:
    """Bitso's {"success": false, "error": {"code", "message"}} (5xx and 429 never get here)."""
    found = body.get("error")
    error = found if isinstance(found, dict) else {}
    code = str(error.get("code", ""))
    if status in (401, 403):
        contract_code = "PROVIDER_AUTH"  # our key or signature: our misconfiguration
    elif code in QUOTE_GONE_CODES:
        contract_code = QUOTE_EXPIRED
    elif code in KEY_REUSED_CODES:
        contract_code = IDEMPOTENCY_MISMATCH  # what Bitso did with that key is unknown
    else:
        contract_code = INVALID_REQUEST
    message = f"{error.get('message', 'no message')} (HTTP {status}, code {code or 'none'})"
    return ProviderError(
        provider,
        message,
        retryable=False,
        code=contract_code,
        outcome_unknown=contract_code == IDEMPOTENCY_MISMATCH,
    )


def funding_event_id(fid: object, status: str) -> str:
    """The event id of a funding's webhook in `status`; ValueError without a fid."""
    if not isinstance(fid, str) or not fid:
        raise ValueError(f"not a funding id: {fid!r}")
    return f"{fid}:{status}"


def details_of(funding: Mapping[str, Any]) -> dict[str, Any]:
    details = funding.get("details")
    return details if isinstance(details, dict) else {}


def conversion_of(funding: Mapping[str, Any]) -> dict[str, Any]:
    """The sandbox's `details.conversion` of a funding, or {} (see the module docstring)."""
    conversion = details_of(funding).get("conversion")
    return conversion if isinstance(conversion, dict) else {}


def _decimal(value: Any, *, positive: bool = False) -> Decimal:
    """A finite Decimal from a decimal *string* (Bitso sends amounts as strings; a JSON number
    would already have been through a float): never negative, never zero if `positive`, and
    of a size money has (quantizing 1E+999999 to centavos is an InvalidOperation)."""
    text = value if isinstance(value, str) and len(value) <= MAX_AMOUNT_TEXT else "NaN"
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    if (
        not amount.is_finite()
        or amount < 0
        or (positive and amount == 0)
        or amount.adjusted() > MAX_AMOUNT_EXPONENT
    ):
        raise ValueError(f"not a decimal amount: {ascii(value)[:40]}")
    return amount


def decimal_string(value: Any) -> str:
    """Bitso's own positive decimal string, unchanged, so no digit is lost on the way."""
    _decimal(value, positive=True)
    return str(value)


def centavos(value: Any) -> int:
    """An MXN decimal string in centavos, rounded down: never credit more than Bitso did."""
    return int(_decimal(value).quantize(CENT, rounding=ROUND_DOWN) * 100)


def from_millis(value: Any) -> datetime:
    """Bitso's epoch milliseconds (`created`, `expires`) as an aware datetime, without floats."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not epoch milliseconds: {value!r}")
    millis = int(text)
    return datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso_or_none(value: Any) -> datetime | None:
    """An ISO 8601 time, or None: a funding's created_at is for the record only."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
