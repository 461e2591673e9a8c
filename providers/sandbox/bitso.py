"""Bitso emulator: conversion quotes, a deposit address per quote, fundings, signed webhooks.

Answers providers/bitso.py as api.bitso.com would: {"success": true, "payload": ...} or
{"success": false, "error": {"code", "message"}}; its HMAC auth, refused at 401 with Bitso's
codes (0201 credentials, 0206 nonce type, 0207 nonce value, 0215 signature); 400 for 0303
(field missing), 0313 (currency or network), 0320 (pagination); 404 `quote_not_found`; and
`funding` webhooks signed as Bitso signs them (RSA, x-bitso-webhook-event-signature).

Where a pay-in needs more than Bitso's API gives, it extends it, on purpose and only so
(providers/bitso.py says what production needs instead): a quote lives QUOTE_LIFETIME, not
30 s, and reads EXPIRED once it lapsed unpaid; `GET /api/v3/funding_destination` takes
`quote_id` and gives each quote an address of its own (a real Bitso address belongs to the
account); each deposit is converted to pesos at its quote, as the funding's
`details.conversion` says.

Pesos credited: once R units arrived for a quote of `to_amount` MXN for `from_amount` units,
the quote has credited floor_to_centavo(to_amount * R / from_amount) in all; each funding gets
what it added. So exactly `from_amount` credits exactly `to_amount`; a short deposit, its share
rounded down; an overpayment, its share too; several deposits add up to the centavo. A deposit
after the quote expired is still credited (the money arrived) at the locked quote, which keeps
the sandbox deterministic; its conversion says `quote_expired: true`, and Cobro must record the
payment as late.

Quotes and fundings live in the sandbox store (providers/sandbox/store.py), a deposit address
is a handle to its quote. Nonces seen are each process's own memory: a replay is refused by
the process that saw the original (and after a restart, a v1 nonce starts over).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.domain.ids import random_token
from providers.bitso_wire import (
    KEY_ID_HEADER,
    PUBLIC_KEYS_OPTION,
    SIGNATURE_HEADER,
    public_key_option,
    sign_request,
    signed_bytes,
)
from providers.sandbox.common import Emulator, JSONResponse
from providers.sandbox.store import Tx


@dataclass(frozen=True, slots=True)
class Asset:
    rate: Decimal  # the sandbox's fixed price, MXN per unit
    places: int  # decimals on chain: USDC and USDT are 6-decimal tokens, bitcoin has 8
    networks: frozenset[str]


ASSETS = {
    "usdc": Asset(Decimal("17.00"), 6, frozenset({"polygon", "ethereum", "solana"})),
    "usdt": Asset(Decimal("17.05"), 6, frozenset({"polygon", "ethereum", "tron"})),
    "btc": Asset(Decimal("1700000.00"), 8, frozenset({"bitcoin"})),
}

# How each network spells an address: prefix, alphabet, characters after the prefix.
HEX = "0123456789abcdef"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
ADDRESS_FORMATS = {
    "ethereum": ("0x", HEX, 40),
    "polygon": ("0x", HEX, 40),
    "solana": ("", BASE58, 44),
    "tron": ("T", BASE58, 33),
    "bitcoin": ("bc1q", BECH32, 38),
}

# Bitso's quotes last 30 s, which no customer paying from a wallet can meet: the sandbox holds
# its price for 15 minutes (and still says when the quote expires).
QUOTE_LIFETIME = timedelta(minutes=15)
FUNDINGS = "all"  # what every funding is filed under in the store: they are listed together

# Nonces of up to 13 digits follow Bitso's first rule: each larger than the key's last. Longer
# ones are "Nonce v2" (13-digit Unix ms + salt): taken out of order, never twice, and only this
# close to the wall clock (Bitso does not publish its window; the sandbox clock is not used, as
# the operator moves it).
NONCE_V1_DIGITS = 13
NONCE_MAX_DIGITS = 19
NONCE_V2_WINDOW_MS = 60_000

CENT = Decimal("0.01")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Far above any payment (Cobro's CRYPTO maximum is 200,000.00), and small enough for exact
# Decimal arithmetic in the default 28-digit context.
MAX_PESOS = Decimal(10) ** 12

# Signs the sandbox's webhooks (RSA-2048, PKCS#8 DER). A test key published with the code: it
# proves nothing outside the sandbox, and no production configuration may list its public half.
SANDBOX_KEY_ID = "cobro-sandbox-1"
SANDBOX_PRIVATE_KEY = base64.b64decode(
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCXyG0jza5XHSFuAIOOaPZy992G5bRjOQcjibYsCwhk"
    "v3Fj4SgjqrXzG2rPu0qrMInivVV/C3ELbEFMJUUUu4Xhx6ReEwbyyi2Wrh1K8qBUmzbIAVpmBwuau6LmtUqdGA36yMZx"
    "F2p+pCoG6lEd0r9K0nPzAruvfcXwmSjyQgNi6FP2TuSH0AGqkQzcqCyyOuzWFkqEykwM70cWBAK9arL5/76ldI0TvO35"
    "yJvgJ3v7YlQ8mvH7G17z63RtTOw3NXSSMg72MrBeNQala/wKvTJTMBqo54yZaRcbTw0ZGkrT3OLcttkYFd1omLbOzhKe"
    "axyNyS3c//4JqVq7BFB/oobtAgMBAAECggEABNfjLauMRuDZ1nwDNqngRVpl8f5F842YDfkAvGaMucRHHsAKSxsRK8UB"
    "80d/cjd+CuNuRTvM+2eUrNSan/b85m+7rbnPNLOhYUfEjQXxekmqpZavdwZ+Bw26PMDntNwV5B0Agg7Ued6MrcRP2tMF"
    "AiL1irlZWlf51zvX6+UR3RfOs4IBtFJBJqKGkq4tKH5igVLNDnYo+lVcxqISjU4rtX7S7kVJ+SKdoCJxjnsYXHM+LNuT"
    "ApRwlj4ActtgVoYm/LYl1KBZF1us9oCND3VRntidSeC7ArQKYocxYZVzugHTxwp/4awZzGqFGipPQpklomzlwOcCzoBY"
    "SDHl/MLCwQKBgQDGD1P6R0lcWaiAEATkqOdDey85535W9WLPBtIdKKQUzeitS8HgW7ieMWI/0ca2IrmSQ+4ot5jl29TU"
    "ZggpDAWJXhgwXsVgXwwp5x/OaAX07FuDmHESGNepiOpRLnWHikF2XUYRWS0HII5N0dS9oGxPa908pwyl4WUv7h5FOgF+"
    "rQKBgQDEL2ycyNcDth+z+jzHW42/XUCQmPxVfpSQyaa4FqF2lM/cq3mJzyxHXeP247p93GFQNIFYWQe7VC7mrdXcfXtT"
    "LlS+8b9NxJzXdS8BWdUhSYtmb5t99/JmfnYBcebcBTOFHovAaRF7emfuy6bNjSu6ysIlcfZwuwXqSGx2u5NxQQKBgBxK"
    "OjOIlSj0wYWxRBGpModIBCHgOAKRwFBT6BU0JeO22aJPLN0wHLmz0hXNj/WaFimXPGBigRtsAAVqoYXDatMJNqlKECVI"
    "zkL5+WgRIbCvRg8Q6i2skLltjhKUcUMv81PF1OlLdIwNEWZ6L0n6rR3XCV3NepgDDuH+wCIhO+9tAoGAHOe/4PnWdD2J"
    "PkNIYTckE2Xx9VwVEaOs0AhmAAmVkJssZR7+sUdNBtbWl7HF8HVgASk7RYEYmok0v9gtAmeanA7ffaKwxQyK71PcsR5D"
    "QLxNRbJ7/nthw6guStg1Y4WAqcRuYtMYOFE4rv5ifTanksX9BPddkA5+OJ6jHHtWpgECgYBgweMgyxD85dGr6RDdkmY8"
    "9Cw6giv5EUhPIVYni2NKolaqbCWQ59p8Snnqcp1x5oVRINOkP9pyREizjER9XggtnDnDmYBRhTJW8msB7bXdwoUo9LRp"
    "YfYUM/lo+gCJqt9u4MGpLsEPIXZsviJ8ZCJnqyMZlJsXIDeLu7gPFVHWSg=="
)
# Our own key, so cryptography's RSA checks (30 ms at every start) are skipped.


def _rsa_private_key(der: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(
        der, password=None, unsafe_skip_rsa_key_validation=True
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


_SIGNING_KEY = _rsa_private_key(SANDBOX_PRIVATE_KEY)


@dataclass
class Quote:
    body: dict[str, Any]  # as Bitso answers it
    asset: str
    from_amount: Decimal
    to_amount: Decimal
    expires: datetime
    network: str | None = None
    address: str | None = None
    received: Decimal = Decimal(0)
    completed: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        for name in ("from_amount", "to_amount", "received"):
            doc[name] = str(doc[name])
        doc["expires"] = _millis(self.expires)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Quote:
        amounts = {name: Decimal(doc[name]) for name in ("from_amount", "to_amount", "received")}
        expires = EPOCH + timedelta(milliseconds=doc["expires"])
        return cls(**{**doc, **amounts, "expires": expires})


class BitsoEmulator(Emulator):
    name = "bitso"
    ADAPTER_OPTIONS = {
        PUBLIC_KEYS_OPTION: public_key_option(SANDBOX_KEY_ID, _SIGNING_KEY.public_key())
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_v1_nonce: dict[str, int] = {}
        self._seen_v2: set[tuple[str, int]] = set()
        self._seen_v2_order: deque[tuple[int, str, int]] = deque()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v4/currency_conversions", self.create_quote, methods=["POST"]),
            Route("/api/v4/currency_conversions/{id}", self.get_quote, methods=["GET"]),
            Route("/api/v3/funding_destination", self.funding_destination, methods=["GET"]),
            Route("/api/v3/fundings", self.list_fundings, methods=["GET"]),
        ]

    # -- authentication ----------------------------------------------------------------------

    def check_auth(self, request: Request) -> Response | None:
        """What the header alone shows: its shape, the key, the nonce's type."""
        parts = _authorization(request)
        if parts is None or parts[0] != self.api_key:
            return _error(401, "0201", "Check your credentials")
        nonce = parts[1]
        if not (nonce.isascii() and nonce.isdigit()) or len(nonce) > NONCE_MAX_DIGITS:
            return _error(401, "0206", "Invalid nonce type")
        return None

    async def authenticate(self, request: Request) -> Response | None:
        """The header (Emulator.authenticate), then what needs the body: the signature,
        and only then the nonce, so a forged request cannot spend one."""
        if (refused := await super().authenticate(request)) is not None:
            return refused
        key, nonce, signature = _authorization(request) or ("", "", "")
        query = request.url.query
        path = request.url.path + (f"?{query}" if query else "")
        expected = sign_request(
            self.config.api_secret, nonce, request.method, path, await request.body()
        )
        if not hmac.compare_digest(expected, signature):
            return _error(401, "0215", "Incorrect request signature")
        if not self._fresh_nonce(key, nonce):
            return _error(401, "0207", "Invalid nonce value")
        return None

    def _fresh_nonce(self, key: str, nonce: str) -> bool:
        value = int(nonce)
        if len(nonce) <= NONCE_V1_DIGITS:
            if value <= self._last_v1_nonce.get(key, 0):
                return False
            self._last_v1_nonce[key] = value
            return True
        now_ms, stamp_ms = time.time_ns() // 1_000_000, int(nonce[:NONCE_V1_DIGITS])
        while self._seen_v2_order and self._seen_v2_order[0][0] < now_ms - NONCE_V2_WINDOW_MS:
            _, old_key, old_value = self._seen_v2_order.popleft()
            self._seen_v2.discard((old_key, old_value))
        if abs(now_ms - stamp_ms) > NONCE_V2_WINDOW_MS or (key, value) in self._seen_v2:
            return False
        self._seen_v2.add((key, value))
        self._seen_v2_order.append((stamp_ms, key, value))
        return True

    # -- the API -----------------------------------------------------------------------------

    async def create_quote(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        params = await _json_object(request)
        if isinstance(params, Response):
            return params
        return await self.call(
            request.headers.get("idempotency-key"),
            params,
            lambda tx: self._create_quote(tx, params),
            lambda: _error(
                400, "idempotency_key_reused", "Idempotency-Key was used with other parameters"
            ),
        )

    async def _create_quote(self, tx: Tx, params: dict[str, Any]) -> Response:
        code = str(params.get("from_currency", "")).lower()
        asset = ASSETS.get(code)
        if asset is None:
            return _error(400, "0313", f"from_currency {code!r} is not supported")
        if str(params.get("to_currency", "")).lower() != "mxn":
            return _error(400, "0313", "the sandbox converts into mxn only")
        amounts = _amounts(params, asset)
        if isinstance(amounts, Response):
            return amounts
        from_amount, to_amount = amounts
        now = self.state.clock.now()
        quote_id = random_token(16)
        body = {
            "id": quote_id,
            "from_amount": str(from_amount),
            "from_currency": code,
            "to_amount": str(to_amount.quantize(CENT)),
            "to_currency": "mxn",
            "rate": str(asset.rate),
            "plain_rate": str(asset.rate),
            "rate_currency": "mxn",
            "book": f"{code}_mxn",
            "padding": "0",
            "created": _millis(now),
            "expires": _millis(now + QUOTE_LIFETIME),
        }
        quote = Quote(body, code, from_amount, to_amount, now + QUOTE_LIFETIME)
        tx.put("quote", quote_id, quote.to_doc())
        return _ok(body)

    async def get_quote(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        doc = await self.store.get(self.name, "quote", request.path_params["id"])
        if doc is None:
            return _error(404, "quote_not_found", "Quote not found")
        quote = Quote.from_doc(doc.body)
        if quote.completed:
            status = "COMPLETED"
        else:
            status = "EXPIRED" if self.state.clock.now() >= quote.expires else "OPEN"
        return _ok({**quote.body, "status": status})

    async def funding_destination(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        query = request.query_params
        code, network = query.get("fund_currency", "").lower(), query.get("network", "").lower()
        asset = ASSETS.get(code)
        if asset is None:
            return _error(400, "0313", f"fund_currency {code!r} is not supported")
        if network not in asset.networks:
            return _error(400, "0313", f"{code} is not deposited on network {network!r}")
        if not query.get("quote_id"):
            return _error(400, "0303", "Required field missing: quote_id")
        return (await self.run(lambda tx: self._destination(tx, query["quote_id"], code, network)))[
            0
        ]

    async def _destination(self, tx: Tx, quote_id: str, code: str, network: str) -> Response:
        doc = await tx.get("quote", quote_id)
        if doc is None:
            return _error(404, "quote_not_found", "Quote not found")
        quote = Quote.from_doc(doc)
        if quote.asset != code or quote.network not in (None, network):
            return _error(400, "0313", f"quote {quote_id} is not for {code} on {network}")
        if quote.address is None:
            quote.network, quote.address = network, _new_address(network)
            tx.put("quote", quote_id, quote.to_doc())
            tx.bind(f"address:{quote.address}", "quote", quote_id)
        return _ok(
            {
                "account_identifier_name": f"{code.upper()} address ({network})",
                "account_identifier": quote.address,
            }
        )

    async def list_fundings(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        query = request.query_params
        limit = query.get("limit", "25")
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 100:
            return _error(400, "0320", "Invalid pagination parameters")
        status = query.get("status")
        fundings = [doc.body for _, doc in await self.store.find(self.name, "funding", FUNDINGS)]
        rows = [f for f in reversed(fundings) if not status or f["status"] == status]
        return _ok(rows[: int(limit)])

    # -- what happens outside the API: deposits and webhooks ----------------------------------

    async def receive(self, tx: Tx, key: str, amount: str) -> None:
        """`amount` units arrived at quote `key`'s address: a funding, pending then complete,
        credited as the module docstring says."""
        doc = await tx.get("quote", key)
        if doc is None:
            return
        quote, units = Quote.from_doc(doc), Decimal(amount)
        before = _credited(quote, quote.received)
        quote.received += units
        funding = self._funding(quote, units, _credited(quote, quote.received) - before)
        self._send(tx, funding)
        funding["status"] = "complete"
        quote.completed = True
        self._send(tx, funding)
        tx.put("funding", funding["fid"], funding, ref=FUNDINGS)
        tx.put("quote", key, quote.to_doc())

    def _funding(self, quote: Quote, amount: Decimal, credit: Decimal) -> dict[str, Any]:
        network = quote.network or ""
        evm = ADDRESS_FORMATS[network][0] == "0x"
        return {
            "fid": secrets.token_hex(16),
            "status": "pending",
            "created_at": self.state.clock.now().isoformat(timespec="seconds"),
            "currency": quote.asset,
            "asset": quote.asset,
            "method": quote.asset if network == "bitcoin" else f"{quote.asset}_{network}",
            "method_name": f"{quote.asset.upper()} ({network})",
            "network": network,
            "amount": str(amount),
            "details": {
                "receiving_address": quote.address,
                "tx_hash": ("0x" if evm else "") + secrets.token_hex(32),
                "conversion": {
                    "quote_id": quote.body["id"],
                    "rate": quote.body["rate"],
                    "from_amount": quote.body["from_amount"],
                    "to_currency": "mxn",
                    "to_amount": str(credit),
                    "quote_expired": self.state.clock.now() >= quote.expires,
                },
            },
        }

    def _send(self, tx: Tx, funding: dict[str, Any]) -> None:
        body = json.dumps({"event": "funding", "payload": funding}, separators=(",", ":"))
        tx.webhook(body.encode())

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return sign_webhook(body, timestamp)


def sign_webhook(body: bytes, timestamp: int) -> dict[str, str]:
    """Bitso's headers for `body`: RSA-SHA256 over its payload's compact JSON. Bitso's scheme
    has no timestamp, so a redelivery carries the same signature."""
    payload = json.loads(body)["payload"]
    signature = _SIGNING_KEY.sign(signed_bytes(payload), padding.PKCS1v15(), hashes.SHA256())
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), KEY_ID_HEADER: SANDBOX_KEY_ID}


def _amounts(params: dict[str, Any], asset: Asset) -> tuple[Decimal, Decimal] | Response:
    """(crypto to send, pesos to receive) for `receive_amount` MXN: the crypto rounded UP to the
    asset's decimals, so the merchant never gets less. (Bitso also quotes by `spend_amount`;
    Cobro never asks for that, so the sandbox refuses it.)"""
    text = str(params.get("receive_amount", ""))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return _error(400, "0303", "Required field missing: receive_amount")
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or not 0 < amount <= MAX_PESOS or int(exponent) < -2:
        return _error(400, "0303", f"receive_amount {text!r} is not an amount of pesos")
    with localcontext() as ctx:
        ctx.rounding = ROUND_CEILING
        return (amount / asset.rate).quantize(Decimal(1).scaleb(-asset.places)), amount


def _credited(quote: Quote, received: Decimal) -> Decimal:
    """Pesos a quote has credited once `received` units arrived (the module docstring's rule)."""
    with localcontext() as ctx:
        ctx.rounding = ROUND_FLOOR
        return (quote.to_amount * received / quote.from_amount).quantize(CENT)


def _new_address(network: str) -> str:
    prefix, alphabet, length = ADDRESS_FORMATS[network]
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _authorization(request: Request) -> tuple[str, str, str] | None:
    """(key, nonce, signature) from `Authorization: Bitso key:nonce:signature`."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    parts = credentials.split(":")
    return (parts[0], parts[1], parts[2]) if scheme == "Bitso" and len(parts) == 3 else None


def _millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        params = json.loads(await request.body() or b"{}")
    except ValueError:
        params = None
    if not isinstance(params, dict):
        return _error(400, "0303", "the body must be a JSON object")
    return params


def _ok(payload: Any) -> JSONResponse:
    return JSONResponse({"success": True, "payload": payload})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message}}, status_code=status
    )
