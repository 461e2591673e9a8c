"""What all emulators share: the clock, the store, and the way to Cobro's webhooks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from providers.sandbox.store import MemoryStore, SandboxStore

log = logging.getLogger("cobro.sandbox")


class Clock(Protocol):
    """The app's clock, as the emulators use it (the sandbox can move it)."""

    def now(self) -> datetime: ...

    def timestamp(self) -> int: ...


class SignedWebhook(Protocol):
    """Builds the headers for a body at a given time, as the PSP signs it."""

    def __call__(self, body: bytes, timestamp: int) -> dict[str, str]: ...


@dataclass
class SandboxState:
    clock: Clock
    public_url: str  # Cobro's own address: hosted pages and return URLs start here
    webhook_client: httpx.AsyncClient | None = None  # reaches Cobro's /webhooks/{provider}
    # Everything the PSPs know (providers/sandbox/store.py): the app's database when
    # the app runs, a dict when a test builds an emulator on its own.
    store: SandboxStore = field(default_factory=MemoryStore)

    async def post(self, provider: str, body: bytes, sign: SignedWebhook) -> int | None:
        """Post one signed webhook to Cobro; Cobro's status, or None if it was not heard."""
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
