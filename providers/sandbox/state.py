"""What all emulators share: the clock, fault modes, and the webhooks they sent."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from providers.sandbox.faults import Faults

log = logging.getLogger("cobro.sandbox")

# How many sent webhooks `/sandbox/webhooks/redeliver` can reach back to.
REDELIVERY_MEMORY = 1_000


class Clock(Protocol):
    """The app's clock, as the emulators use it (the sandbox can move it)."""

    def now(self) -> datetime: ...

    def timestamp(self) -> int: ...


class SignedWebhook(Protocol):
    """Builds the headers for a body at a given time, as the PSP signs it."""

    def __call__(self, body: bytes, timestamp: int) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class SentWebhook:
    provider: str
    body: bytes
    sign: SignedWebhook


@dataclass
class SandboxState:
    clock: Clock
    public_url: str  # Cobro's own address: hosted pages and return URLs start here
    webhook_client: httpx.AsyncClient | None = None  # reaches Cobro's /webhooks/{provider}
    faults: Faults = field(default_factory=Faults)
    sent: deque[SentWebhook] = field(default_factory=lambda: deque(maxlen=REDELIVERY_MEMORY))
    # "oxxo:<reference>" / "3ds:<cobro intent id>" -> the emulator call that settles it.
    settlers: dict[str, Callable[[], Awaitable[int | None]]] = field(default_factory=dict)
    # Where money can arrive: a CLABE (SPEI) or a deposit address (crypto) -> the
    # emulator call that receives an amount there (minor units for SPEI, a decimal
    # string in the asset's units for crypto).
    clabes: dict[str, Callable[[int], Awaitable[int | None]]] = field(default_factory=dict)
    addresses: dict[str, Callable[[str], Awaitable[int | None]]] = field(default_factory=dict)

    async def send_webhook(self, provider: str, body: bytes, sign: SignedWebhook) -> int | None:
        """Post one signed webhook to Cobro, remember it for redelivery; return the status."""
        self.sent.append(SentWebhook(provider, body, sign))
        return await self._post(provider, body, sign)

    async def redeliver(self, count: int) -> list[int | None]:
        """Send the last `count` webhooks again: same events, fresh signatures."""
        recent = list(self.sent)[-count:] if count > 0 else []
        return [await self._post(w.provider, w.body, w.sign) for w in recent]

    async def _post(self, provider: str, body: bytes, sign: SignedWebhook) -> int | None:
        if self.webhook_client is None:
            return None
        headers = {"content-type": "application/json", **sign(body, self.clock.timestamp())}
        try:
            response = await self.webhook_client.post(
                f"/webhooks/{provider}", content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            # A PSP whose webhook fails retries later; here, redeliver does that.
            log.warning("sandbox webhook to %s failed: %s", provider, exc)
            return None
        return response.status_code
