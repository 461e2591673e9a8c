"""The sandbox's customer controls (providers/sandbox/app.py), on an emulator a test
built on its own, and the webhooks it sent."""

from __future__ import annotations

from typing import Any

from providers.sandbox.common import Emulator
from providers.sandbox.store import Tx


async def settle(emulator: Emulator, name: str) -> int | None:
    """Pay the voucher / pass the 3-D Secure named `name` ("oxxo:…", "3ds:…"), as
    POST /sandbox/oxxo/{reference}/pay does: Cobro's status for the webhook, if any."""
    handle = await emulator.store.handle(name)
    assert handle is not None, f"nothing pending as {name}"

    async def work(tx: Tx) -> None:
        tx.unbind(name)
        await emulator.settle(tx, handle.key)

    return (await emulator.run(work))[1]


async def receive(emulator: Emulator, name: str, amount: Any) -> int | None:
    """Money arrives at "clabe:…" / "address:…", as the deposit controls send it."""
    handle = await emulator.store.handle(name)
    assert handle is not None, f"nothing receives at {name}"
    return (await emulator.run(lambda tx: emulator.receive(tx, handle.key, amount)))[1]


async def last_webhook(emulator: Emulator, timestamp: int) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the last webhook the emulator sent, signed at `timestamp`."""
    [(_, body)] = await emulator.store.recent_webhooks(1)
    return emulator.sign(body, timestamp), body
