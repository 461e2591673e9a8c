"""The addresses of Cobro's hosted pages (contract section 9).

The client secret rides in the fragment: a browser never sends it to a server, so it
never reaches an access log, and the page's script reads it to call the API as that
intent's customer. Whoever may read an intent already holds its secret (its merchant
or its checkout), so the addresses show it only to them.
"""

from __future__ import annotations

CHECKOUT_PATH = "/checkout"
PAYMENT_LINK_PATH = "/pay"


def checkout_url(public_url: str, intent_id: str, client_secret: str) -> str:
    return f"{public_url}{CHECKOUT_PATH}/{intent_id}#{client_secret}"


def voucher_url(public_url: str, intent_id: str, client_secret: str) -> str:
    """The printable OXXO voucher, following the intent live."""
    return f"{public_url}{CHECKOUT_PATH}/{intent_id}/voucher#{client_secret}"


def instructions_url(public_url: str, intent_id: str, client_secret: str) -> str:
    """The printable SPEI or crypto instructions, following the intent live."""
    return f"{public_url}{CHECKOUT_PATH}/{intent_id}/instructions#{client_secret}"


def payment_link_url(public_url: str, link_id: str) -> str:
    return f"{public_url}{PAYMENT_LINK_PATH}/{link_id}"
