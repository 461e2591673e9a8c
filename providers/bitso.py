"""Bitso: crypto pay-ins settled in pesos, through conversion quotes (docs.bitso.com).

A quote (`POST /api/v4/currency_conversions`, receive_amount in MXN, our Idempotency-Key) fixes
the pesos and says how much crypto to send (`from_amount`) at which `rate` until `expires`; the
funding destination (`GET /api/v3/funding_destination`) says where. `GET /api/v3/fundings` and
`GET /api/v4/currency_conversions/{id}` tell what arrived; the `funding` webhook, verified with
Bitso's RSA signature, tells it first. Calls are signed as Bitso's "Create Signed Requests" and
bitso-py's `_build_auth_header` sign them: `Authorization: Bitso <key>:<nonce>:<hex
HMAC-SHA256(secret, nonce + method + path with query + JSON body)>`.

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

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Generator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote as quote_path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.domain.methods import PaymentMethodType
from app.domain.money import Currency
from app.domain.next_action import CryptoInstructions
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
from providers.http import PspHttp, json_body

# Bitso's codes for a quote it no longer knows (its RFQ API: `quote_not_found`): the
# contract's QUOTE_EXPIRED.
QUOTE_EXPIRED = "QUOTE_EXPIRED"
QUOTE_GONE_CODES = frozenset({"quote_not_found", "quote_expired"})

# Bitso's "Webhook Signatures": Base64 RSA-SHA256 (PKCS#1 v1.5) of the payload, and its key id.
SIGNATURE_HEADER = "x-bitso-webhook-event-signature"
KEY_ID_HEADER = "x-bitso-key-id"
# Bitso's webhook public keys ("List webhook public keys"), "key_id:base64 DER,..." in options.
PUBLIC_KEYS_OPTION = "webhook_public_keys"

FUNDINGS_PAGE = 100  # the most recent fundings fetch_payment reads: Bitso's largest page
CENT = Decimal("0.01")

FUNDING_STATUS_MAP = {
    "pending": ProviderStatus.PROCESSING,
    "complete": ProviderStatus.SUCCEEDED,
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


class BitsoAuth(httpx.Auth):
    """Bitso's HMAC signature, computed on the request exactly as it goes out (path, body)."""

    requires_request_body = True

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret
        self._last_nonce = 0

    def next_nonce(self) -> int:
        """Larger than the last one, as Bitso requires: Unix ms followed by six digits that
        count calls within the ms (Bitso's "Nonce v2" shape, 19 digits)."""
        self._last_nonce = max(time.time_ns() // 1_000_000 * 1_000_000, self._last_nonce + 1)
        return self._last_nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        nonce = str(self.next_nonce())
        path = request.url.raw_path.decode("ascii")
        signature = sign_request(self.secret, nonce, request.method, path, request.content)
        request.headers["Authorization"] = f"Bitso {self.key}:{nonce}:{signature}"
        yield request


def sign_request(secret: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of nonce + HTTP method + request path (with query) + JSON body."""
    message = f"{nonce}{method.upper()}{path}".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


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

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment:
        asset, network = self._crypto_of(request)
        quote = await self._call(
            "POST",
            "/api/v4/currency_conversions",
            payload={
                "from_currency": asset.lower(),
                "to_currency": "mxn",
                "receive_amount": request.amount.to_decimal_string(),
            },
            idempotency_key=idempotency_key,
        )
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
        complete = [f for f in fundings if f.get("status") == "complete"]
        try:
            received = sum(centavos(conversion_of(f).get("to_amount")) for f in complete)
        except ValueError as exc:
            raise ProviderError(
                self.name, f"answered a funding Cobro cannot read ({exc})", retryable=True
            ) from None
        addresses = {_str_or_none(details_of(f).get("receiving_address")) for f in fundings}
        return ProviderPayment(
            provider_ref=quote_id,
            status=ProviderStatus.SUCCEEDED if complete else ProviderStatus.PROCESSING,
            amount_received=received if complete else None,
            lookup_keys=tuple(sorted(a for a in addresses if a)),
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
        kind, payload = str(envelope["event"]), envelope["payload"]
        if kind != "funding":
            event_id = f"{kind}:{hashlib.sha256(body).hexdigest()[:32]}"
            return [ProviderEvent(self.name, event_id, kind, None, raw=envelope)]
        return [self._funding_event(payload, envelope)]

    def _funding_event(self, payload: dict[str, Any], envelope: dict[str, Any]) -> ProviderEvent:
        fid, status = payload.get("fid"), payload.get("status")
        if not isinstance(fid, str) or not fid or not isinstance(status, str):
            raise WebhookRejected("funding payload lacks fid or status")
        conversion = conversion_of(payload)
        neutral = FUNDING_STATUS_MAP.get(status, ProviderStatus.PENDING)
        try:
            credited = neutral is ProviderStatus.SUCCEEDED and "to_amount" in conversion
            amount = centavos(conversion["to_amount"]) if credited else None
        except ValueError as exc:
            raise WebhookRejected(f"funding conversion amount: {exc}") from None
        return ProviderEvent(
            provider=self.name,
            # pending and complete are two events of one funding: both must reach the core.
            event_id=f"{fid}:{status}",
            type="funding",
            status=neutral,
            provider_ref=_str_or_none(conversion.get("quote_id")),
            lookup_key=_str_or_none(details_of(payload).get("receiving_address")),
            amount=amount,
            occurred_at=_iso_or_none(payload.get("created_at")),
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
        body = json_body(self.name, response)
        if response.status_code >= 400 or body.get("success") is not True:
            raise _api_error(self.name, response.status_code, body)
        return body.get("payload")

    def _refused(self, message: str) -> ProviderError:
        return ProviderError(self.name, message, retryable=False, code=INVALID_REQUEST)

    async def aclose(self) -> None:
        await self.http.aclose()


def _api_error(provider: str, status: int, body: Mapping[str, Any]) -> ProviderError:
    """Bitso's {"success": false, "error": {"code", "message"}} (5xx and 429 never get here)."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str(error.get("code", ""))
    if status in (401, 403):
        contract_code = "PROVIDER_AUTH"  # our key or signature: our misconfiguration
    elif code in QUOTE_GONE_CODES:
        contract_code = QUOTE_EXPIRED
    else:
        contract_code = INVALID_REQUEST
    message = f"{error.get('message', 'no message')} (HTTP {status}, code {code or 'none'})"
    return ProviderError(provider, message, retryable=False, code=contract_code)


def details_of(funding: Mapping[str, Any]) -> dict[str, Any]:
    details = funding.get("details")
    return details if isinstance(details, dict) else {}


def conversion_of(funding: Mapping[str, Any]) -> dict[str, Any]:
    """The sandbox's `details.conversion` of a funding, or {} (see the module docstring)."""
    conversion = details_of(funding).get("conversion")
    return conversion if isinstance(conversion, dict) else {}


def _decimal(value: Any, *, positive: bool = False) -> Decimal:
    """A finite Decimal from a decimal *string* (Bitso sends amounts as strings; a JSON number
    would already have been through a float): never negative, never zero if `positive`."""
    try:
        amount = Decimal(value if isinstance(value, str) else "NaN")
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or (positive and amount == 0):
        raise ValueError(f"not a decimal amount: {value!r}")
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
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# -- webhook signatures: Bitso's scheme ------------------------------------------------------


def load_public_keys(option: str) -> dict[str, rsa.RSAPublicKey]:
    """The `webhook_public_keys` option: "key_id:base64 DER SubjectPublicKeyInfo", comma-separated.

    A malformed entry fails here, when the adapter is built, not at the first webhook."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    for entry in filter(None, (part.strip() for part in option.split(","))):
        key_id, _, encoded = entry.partition(":")
        key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
        if not key_id or not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"{PUBLIC_KEYS_OPTION}: {key_id!r} is not an RSA public key")
        keys[key_id] = key
    return keys


def public_key_option(key_id: str, key: rsa.RSAPublicKey) -> str:
    """One `webhook_public_keys` entry, as Bitso's key list gives it (Base64 DER)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"{key_id}:{base64.b64encode(der).decode()}"


def signed_bytes(payload: Any, *, ascii_only: bool = True) -> bytes:
    """The compact JSON of `payload`, the bytes Bitso signs (its docs: Python's
    separators=(',', ':'), which escape non-ASCII by default)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def verify_signature(
    body: bytes, headers: Mapping[str, str], public_keys: Mapping[str, rsa.RSAPublicKey]
) -> dict[str, Any]:
    """The event envelope, if the key named in `x-bitso-key-id` signed its payload; else
    WebhookRejected. Bitso's docs do not say whether non-ASCII is escaped before signing, so
    both spellings are tried: both are the one payload, so nothing unsigned gets through."""
    lowered = {k.lower(): v for k, v in headers.items()}
    encoded, key_id = lowered.get(SIGNATURE_HEADER, ""), lowered.get(KEY_ID_HEADER, "")
    if not encoded or not key_id:
        raise WebhookRejected(f"{SIGNATURE_HEADER} or {KEY_ID_HEADER} header missing")
    key = public_keys.get(key_id)
    if key is None:
        raise WebhookRejected(f"no Bitso webhook public key {key_id!r} is configured")
    try:
        signature = base64.b64decode(encoded, validate=True)
        envelope = json.loads(body)
    except (binascii.Error, ValueError):
        raise WebhookRejected("signature is not Base64 or body is not JSON") from None
    if not (
        isinstance(envelope, dict)
        and isinstance(envelope.get("event"), str)
        and isinstance(envelope.get("payload"), dict)
    ):
        raise WebhookRejected("body is not a Bitso event {event, payload}")
    candidates = {signed_bytes(envelope["payload"], ascii_only=flag) for flag in (True, False)}
    for candidate in candidates:
        try:
            key.verify(signature, candidate, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return envelope
    raise WebhookRejected("Bitso webhook signature does not verify")
