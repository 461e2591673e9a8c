"""The broker: publish a change on channels; subscribers in this process get it.

Two implementations behind one interface: `InProcessBroker` (the embedded default,
one process) and `RedisBroker` (app/events/redis_broker.py, many processes). Both
fan out in-process through `FanOut`: each subscriber owns a bounded queue, so a
slow or vanished subscriber cannot hold up the others or grow memory; when its
queue is full it is marked to resync from the database instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from app.events.messages import Message

log = logging.getLogger("cobro.broker")

# Changes a subscriber may have waiting before it is told to resync instead.
QUEUE_SIZE = 64


class Subscription:
    """One subscriber's inbox: changes on its channels, or word that it must resync.

    A plain list and one waiting future, not an asyncio.Queue: thousands of these
    sit idle for hours, and a Queue (with its Event, its two deques of waiters and its
    lock-like machinery) costs kilobytes each."""

    __slots__ = ("_behind", "_fanout", "_items", "_waiter", "channels")

    def __init__(self, fanout: FanOut, channels: tuple[str, ...]) -> None:
        self._fanout = fanout
        self.channels = channels
        self._items: list[Message | None] = []  # rarely more than one: a list is smaller
        self._waiter: asyncio.Future[None] | None = None
        self._behind = False  # a resync marker is queued: drop changes until it is read

    def offer(self, change: Message) -> None:
        if self._behind:
            return
        if len(self._items) >= QUEUE_SIZE:
            self.fall_behind()
            return
        self._push(change)

    def fall_behind(self) -> None:
        """Forget what is queued; the reader will catch up from the database instead."""
        if self._behind:
            return
        self._items.clear()
        self._behind = True
        self._push(None)

    def _push(self, item: Message | None) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def pending(self) -> int:
        return len(self._items)

    async def next(self) -> Message | None:
        """The next change, or None when the subscriber must resync from the database."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        change = self._items.pop(0)
        if change is None:
            self._behind = False
        return change

    def close(self) -> None:
        self._fanout.remove(self)


class FanOut:
    """Channel -> subscriptions, in this process.

    `on_first` / `on_last` hear when a channel gains its first or loses its last
    local subscriber (the Redis broker subscribes and unsubscribes there).
    """

    def __init__(
        self,
        on_first: Callable[[str], None] | None = None,
        on_last: Callable[[str], None] | None = None,
    ) -> None:
        self._by_channel: dict[str, set[Subscription]] = {}
        self._on_first = on_first
        self._on_last = on_last

    def add(self, channels: Iterable[str]) -> Subscription:
        subscription = Subscription(self, tuple(channels))
        for channel in subscription.channels:
            listeners = self._by_channel.get(channel)
            if listeners is None:
                listeners = self._by_channel[channel] = set()
                if self._on_first:
                    self._on_first(channel)
            listeners.add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            listeners = self._by_channel.get(channel)
            if listeners is None:
                continue
            listeners.discard(subscription)
            if not listeners:
                del self._by_channel[channel]
                if self._on_last:
                    self._on_last(channel)

    def deliver(self, channel: str, change: Message) -> None:
        for subscription in tuple(self._by_channel.get(channel, ())):
            subscription.offer(change)

    def resync_all(self) -> None:
        """Something may have been missed (the broker link dropped): everyone catches up."""
        for listeners in self._by_channel.values():
            for subscription in listeners:
                subscription.fall_behind()

    @property
    def channels(self) -> list[str]:
        return list(self._by_channel)

    def subscriber_count(self) -> int:
        return len({s for listeners in self._by_channel.values() for s in listeners})


class Broker(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channels: list[str], change: Message) -> None: ...

    async def subscribe(self, channels: list[str]) -> Subscription:
        """Listen on `channels`; when this returns, no later publish can be missed."""
        ...

    async def ping(self) -> None: ...


class InProcessBroker:
    """The embedded default: publishing is delivering, within this one process."""

    def __init__(self) -> None:
        self.fanout = FanOut()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, channels: list[str], change: Message) -> None:
        for channel in channels:
            self.fanout.deliver(channel, change)

    async def subscribe(self, channels: list[str]) -> Subscription:
        return self.fanout.add(channels)

    async def ping(self) -> None:
        return None
