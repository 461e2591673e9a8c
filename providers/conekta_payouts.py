"""Conekta payouts: an SPEI transfer out of the merchant's Conekta balance, the
failover for STP (contract section 8). Mixed into providers/conekta.py.

No public reference in shared/reference documents Conekta's payout calls; the shape
here is chosen to be plausible and to match Conekta's Orders API habits (JSON, Bearer
key, versioned Accept, an Idempotency-Key, errors as {type, details[{code, message}]}):
`POST /payouts` {amount, currency, method {type spei, clabe, beneficiary_name, rfc},
description (the SPEI concepto), reference, tracking_key, metadata} answers a payout
{id, object "payout", status in_transit|paid|returned|failed, tracking_key,
return_reason {code, message}}; a 402 processing_error (insufficient funds) refuses it;
`GET /payouts?tracking_key=` lists the transfers sent under a key; events
`payout.paid|returned|failed` carry the payout as data.object.

The body is built once (`prepare_payout`, pure) with Cobro's tracking key as its
Idempotency-Key too, so a replay of stored bytes is answered with the first answer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from providers.base import (
    INVALID_REQUEST,
    PayoutRequest,
    PayoutState,
    ProviderError,
    ProviderEvent,
    ProviderPayout,
    ProviderStatus,
    WireRequest,
)
from providers.http import PspHttp, json_body
from providers.shapes import Fields, Malformed

if TYPE_CHECKING:
    from collections.abc import Mapping

PAYOUTS_PATH = "/payouts"
# providers/conekta.py's ACCEPT (not imported: that module imports this one).
ACCEPT = "application/vnd.conekta-v2.2.0+json"
PAYOUT_METADATA_KEY = "cobro_payout_id"
PAYOUT_STATES = {
    "in_transit": PayoutState.IN_TRANSIT,
    "paid": PayoutState.PAID,
    "returned": PayoutState.RETURNED,
    "failed": PayoutState.FAILED,
}
# An event about a payout -> what it says of it (no status: still in transit).
PAYOUT_EVENT_STATUS = {
    "payout.paid": ProviderStatus.SUCCEEDED,
    "payout.returned": ProviderStatus.FAILED,
    "payout.failed": ProviderStatus.FAILED,
}


class ConektaPayouts:
    """The payout half of the Conekta adapter."""

    name: str
    http: PspHttp

    def prepare_payout(self, request: PayoutRequest) -> WireRequest:
        method: dict[str, Any] = {
            "type": "spei",
            "clabe": request.clabe,
            "beneficiary_name": request.beneficiary_name,
        }
        if request.rfc:
            method["rfc"] = request.rfc
        body = {
            "amount": request.amount.minor,
            "currency": request.amount.currency.value,
            "method": method,
            "description": request.concept,
            "reference": request.reference,
            "tracking_key": request.tracking_key,
            "metadata": {PAYOUT_METADATA_KEY: request.payout_id},
        }
        headers = (
            ("Content-Type", "application/json"),
            ("Accept", ACCEPT),
            ("Idempotency-Key", request.tracking_key),
        )
        return WireRequest("POST", PAYOUTS_PATH, json.dumps(body).encode(), headers)

    async def send_payout(self, request: PayoutRequest, wire: WireRequest) -> ProviderPayout:
        response = await self.http.send(wire)
        body = json_body(self.name, response)
        if response.status_code >= 400:
            raise _payout_error(self.name, response.status_code, body)
        return self._payout(body)

    async def fetch_payout(self, request: PayoutRequest) -> ProviderPayout | None:
        """The transfer sent under the payout's tracking key, None if there is none."""
        response = await self.http.request(
            "GET", PAYOUTS_PATH, params={"tracking_key": request.tracking_key}
        )
        body = json_body(self.name, response)
        if response.status_code >= 400:
            raise _payout_error(self.name, response.status_code, body)
        try:
            found = Fields(body, "list").each_fields("data")
        except Malformed as exc:
            raise _unreadable_payout(self.name, exc) from None
        if not found:
            return None
        payout = found[0]
        method = payout.optional_fields("method")
        same = (
            payout.raw("amount") == request.amount.minor
            and method is not None
            and method.optional_text("clabe") == request.clabe
        )
        if not same:
            raise ProviderError(
                self.name,
                "tracking key used for another transfer",
                retryable=False,
                code=INVALID_REQUEST,
            )
        return self._payout(payout.values)

    def _payout(self, body: Mapping[str, Any]) -> ProviderPayout:
        try:
            payout = Fields(dict(body), "payout")
            state = PAYOUT_STATES.get(payout.text("status"), PayoutState.IN_TRANSIT)
            reason = payout.optional_fields("return_reason")
            return ProviderPayout(
                payout.text("id"),
                state,
                return_code=reason.optional_text("code") if reason else None,
                message=payout.optional_text("failure_message", max_length=1000),
                raw=dict(body),
            )
        except Malformed as exc:
            raise _unreadable_payout(self.name, exc) from None


def is_payout_object(obj: Fields) -> bool:
    return obj.optional_text("object") == "payout"


def payout_event(common: dict[str, Any], kind: str, obj: Fields) -> ProviderEvent:
    """An event about a payout, naming the payout alone (as the core expects of
    payout and refund news): paid, returned with SPEI's cause, failed."""
    reason = obj.optional_fields("return_reason")
    return ProviderEvent(
        **common,
        status=PAYOUT_EVENT_STATUS.get(kind),
        refund_ref=obj.text("id"),
        return_code=reason.optional_text("code") if reason else None,
    )


def _payout_error(provider: str, status: int, body: Mapping[str, Any]) -> ProviderError:
    """A 4xx: Conekta refused the transfer on its merits (402 insufficient funds, 422
    a bad account); nothing left. 5xx never reaches here (PspHttp raised)."""
    details = body.get("details")
    first = details[0] if isinstance(details, list) and details else {}
    detail = first if isinstance(first, dict) else {}
    message = detail.get("message") or "no message"
    return ProviderError(
        provider,
        f"{message} (HTTP {status} {body.get('type', 'error')}: {detail.get('code', '')})",
        retryable=False,
        code="PROVIDER_AUTH" if status in (401, 403) else INVALID_REQUEST,
    )


def _unreadable_payout(provider: str, exc: Malformed) -> ProviderError:
    """A 2xx Cobro cannot read: Conekta may have taken the transfer, so the outcome is
    unknown and only Conekta hears of this payout again."""
    return ProviderError(
        provider,
        f"answered a payout Cobro cannot read ({exc})",
        retryable=True,
        outcome_unknown=True,
    )
