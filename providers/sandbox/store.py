"""Where the sandbox's PSPs keep what they know, so it outlives a process.

A real PSP remembers a voucher it issued after any of its servers restarts, and any
of its servers can take the payment. So the emulators keep nothing of their own:
their objects (Stripe's PaymentIntents, Conekta's orders, STP's accounts and orders,
Bitso's quotes and fundings), the handles a customer pays through (an OXXO
reference, a CLABE, a deposit address, a pending 3-D Secure), the stored answers of
idempotency keys, the webhooks they sent and the fault modes live in a
`SandboxStore`: in the app's own database when the app runs
(app/services/sandbox_store.py, tables `sandbox_*`), in `MemoryStore` when a test
builds an emulator on its own.

An emulator call works on a `Tx`: it reads objects (remembering each one's version),
stages what it writes, and `commit` writes it all in one transaction together with
the idempotency answer. An object someone else changed since it was read, or a
handle or key someone else took first, raises `Conflict` and nothing is written; the
call then runs again from the start (`Emulator.call`). So two processes never lose
each other's updates, without holding locks across an await.

Bodies are stored as JSON text; Decimal values (STP's amounts) are written as bare
numbers and read back as Decimal, so an object reads back exactly as it was put.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol


class Conflict(Exception):
    """Another writer changed or took first what this call wanted: run it again."""


class Faulty(Exception):
    """The PSP is in a fault mode: writes committed only while it is healthy
    (`Writes.only_if_healthy`) were refused, and nothing was written."""


@dataclass(frozen=True, slots=True)
class Doc:
    body: dict[str, Any]
    version: int


@dataclass(frozen=True, slots=True)
class Handle:
    """What a customer-facing name (an OXXO reference, a CLABE...) leads to."""

    provider: str
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The first answer to an idempotency key, replayed to every retry."""

    fingerprint: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ObjectWrite:
    kind: str
    key: str
    ref: str | None  # a second way to find it (its payment, its operating day...)
    body: str  # encoded
    version: int | None  # the version read; None for a new object


@dataclass
class Writes:
    """Everything one emulator call changes, written in one transaction."""

    provider: str
    objects: dict[tuple[str, str], ObjectWrite] = field(default_factory=dict)
    handles: dict[str, Handle | None] = field(default_factory=dict)  # None drops it
    replace_handles: set[str] = field(default_factory=set)  # may point elsewhere already
    webhooks: list[bytes] = field(default_factory=list)
    answer: tuple[str, Answer] | None = None
    # Refused with Faulty, all of it, if the provider's fault mode is not `ok` when
    # they commit: the call learns its PSP is healthy in the statement that writes.
    only_if_healthy: bool = False

    def __bool__(self) -> bool:
        return bool(self.objects or self.handles or self.webhooks or self.answer)


class SandboxStore(Protocol):
    async def get(self, provider: str, kind: str, key: str) -> Doc | None: ...

    async def find(self, provider: str, kind: str, ref: str) -> list[tuple[str, Doc]]:
        """(key, doc) of the objects of `kind` filed under `ref`, oldest first."""
        ...

    async def handle(self, name: str) -> Handle | None: ...

    async def answer(self, provider: str, key: str) -> Answer | None: ...

    async def commit(self, writes: Writes) -> None:
        """Write all of it or nothing; Conflict if a version, handle or key moved;
        Faulty if `writes.only_if_healthy` and the provider is in a fault mode."""
        ...

    async def fault(self, provider: str) -> str: ...

    async def set_fault(self, provider: str, mode: str) -> None: ...

    async def count_call(self, provider: str) -> int:
        """One more call to a provider in a counting fault mode: how many so far."""
        ...

    async def recent_webhooks(self, count: int) -> list[tuple[str, bytes]]:
        """(provider, body) of the last `count` webhooks sent, oldest first."""
        ...


class Tx:
    """One emulator call's view of the store: reads at their versions, staged writes."""

    def __init__(self, store: SandboxStore, provider: str) -> None:
        self.store = store
        self.writes = Writes(provider)
        self._versions: dict[tuple[str, str], int] = {}

    @property
    def provider(self) -> str:
        return self.writes.provider

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        doc = await self.store.get(self.provider, kind, key)
        if doc is None:
            return None
        self._versions[(kind, key)] = doc.version
        return doc.body

    async def find(self, kind: str, ref: str) -> list[dict[str, Any]]:
        found = await self.store.find(self.provider, kind, ref)
        for key, doc in found:
            self._versions[(kind, key)] = doc.version
        return [doc.body for _, doc in found]

    def put(self, kind: str, key: str, body: dict[str, Any], *, ref: str | None = None) -> None:
        """Write `body` as it is now (later changes to it are not seen)."""
        version = self._versions.get((kind, key))
        self.writes.objects[(kind, key)] = ObjectWrite(kind, key, ref, encode(body), version)

    def bind(self, name: str, kind: str, key: str, *, replace: bool = False) -> None:
        """Let the customer reach object (kind, key) through `name`; a name already
        taken is a Conflict unless `replace`."""
        self.writes.handles[name] = Handle(self.provider, kind, key)
        if replace:
            self.writes.replace_handles.add(name)

    def unbind(self, name: str) -> None:
        self.writes.handles[name] = None

    def webhook(self, body: bytes) -> None:
        """Send `body` to Cobro once this call is committed."""
        self.writes.webhooks.append(body)

    async def commit(self) -> None:
        if self.writes:
            await self.store.commit(self.writes)


def encode(body: dict[str, Any]) -> str:
    numbers: dict[str, str] = {}

    def mark(value: object) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(value).__name__} is not JSON")
        token = f"@@decimal{len(numbers)}@@"
        numbers[token] = str(value)
        return token

    text = json.dumps(body, default=mark, separators=(",", ":"), ensure_ascii=False)
    for token, number in numbers.items():
        text = text.replace(f'"{token}"', number)
    return text


def decode(text: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return body


REDELIVERY_MEMORY = 1_000  # how many sent webhooks `/sandbox/webhooks/redeliver` reaches


class MemoryStore:
    """The store in a dict, for an emulator a test builds without a database."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], tuple[str | None, str, int]] = {}
        self.handles: dict[str, Handle] = {}
        self.answers: dict[tuple[str, str], Answer] = {}
        self.faults: dict[str, tuple[str, int]] = {}
        self.webhooks: list[tuple[str, bytes]] = []

    async def get(self, provider: str, kind: str, key: str) -> Doc | None:
        row = self.objects.get((provider, kind, key))
        return None if row is None else Doc(decode(row[1]), row[2])

    async def find(self, provider: str, kind: str, ref: str) -> list[tuple[str, Doc]]:
        return [
            (k, Doc(decode(body), version))
            for (p, kd, k), (r, body, version) in self.objects.items()
            if (p, kd, r) == (provider, kind, ref)
        ]

    async def handle(self, name: str) -> Handle | None:
        return self.handles.get(name)

    async def answer(self, provider: str, key: str) -> Answer | None:
        return self.answers.get((provider, key))

    async def commit(self, writes: Writes) -> None:
        p = writes.provider
        if writes.only_if_healthy and self.faults.get(p, ("ok", 0))[0] != "ok":
            raise Faulty(p)
        for w in writes.objects.values():
            current = self.objects.get((p, w.kind, w.key))
            if (current[2] if current else None) != w.version:
                raise Conflict(f"{p} {w.kind} {w.key} changed")
        for name, target in writes.handles.items():
            if target and name in self.handles and name not in writes.replace_handles:
                raise Conflict(f"handle {name} is taken")
        if writes.answer and (p, writes.answer[0]) in self.answers:
            raise Conflict(f"{p} idempotency key {writes.answer[0]} is answered")
        for w in writes.objects.values():
            self.objects[(p, w.kind, w.key)] = (w.ref, w.body, (w.version or 0) + 1)
        for name, target in writes.handles.items():
            if target is None:
                self.handles.pop(name, None)
            else:
                self.handles[name] = target
        if writes.answer:
            self.answers[(p, writes.answer[0])] = writes.answer[1]
        self.webhooks += [(p, body) for body in writes.webhooks]
        del self.webhooks[:-REDELIVERY_MEMORY]

    async def fault(self, provider: str) -> str:
        return self.faults.get(provider, ("ok", 0))[0]

    async def set_fault(self, provider: str, mode: str) -> None:
        self.faults[provider] = (mode, 0)

    async def count_call(self, provider: str) -> int:
        mode, calls = self.faults.get(provider, ("ok", 0))
        self.faults[provider] = (mode, calls + 1)
        return calls + 1

    async def recent_webhooks(self, count: int) -> list[tuple[str, bytes]]:
        return self.webhooks[-count:] if count > 0 else []
