"""One execution per change for every subscriber that asked the same question.

A change reaches each subscriber of a channel as the same object (app/events/
broker.py FanOut). Executing the subscription's selection set over it is the same
work for every subscriber with the same document, variables and principal, and was
a quarter of a 1,000-subscriber fan-out (bench/RESULTS.md). So the presented
object and the execution result are shared: the first subscriber computes them, the
rest reuse them. Each subscriber still gets its own message (its operation id) and
its own error handling downstream.

Shared work belongs to no one subscriber. An execution that awaits (a field such as
`events` reads the database) runs as a task that each sharer awaits through
`asyncio.shield`: a sharer whose client vanished is cancelled alone, where awaiting
the task itself would cancel it for everyone (their streams then died silently). A
cancelled execution is never handed out again, and a sharer that finds the shared
work cancelled by anything but itself executes the change on its own.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from graphql import Executor, OperationType

if TYPE_CHECKING:
    from resolvers.types.intent import PaymentIntent

# Recent changes kept for sharing: a burst of distinct changes in one loop turn.
REMEMBERED = 64

V = TypeVar("V")


class _Recent(Generic[V]):
    """A small LRU whose entries keep their source object alive, so an id() in a key
    cannot be reused by another object while the entry exists."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[object, V]] = OrderedDict()

    def get_or_make(self, source: object, key: Hashable, make: Callable[[], V]) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] is source and not _cancelled(entry[1]):
            return entry[1]
        value = make()
        self._entries[key] = (source, value)
        if len(self._entries) > REMEMBERED:
            self._entries.popitem(last=False)
        return value


def _cancelled(value: Any) -> bool:
    return isinstance(value, asyncio.Future) and value.cancelled()


_presented: _Recent[PaymentIntent] = _Recent()
# An execution's result, or the task that computes it.
_executed: _Recent[Any] = _Recent()


def present_shared(
    intent: object, viewer: Hashable, make: Callable[[], PaymentIntent]
) -> PaymentIntent:
    """The GraphQL object for `intent` as `viewer` sees it, made once per change."""
    return _presented.get_or_make(intent, (id(intent), viewer), make)


class SharedEventExecution(Executor[Any]):
    """graphql-core's executor, sharing subscription-event results.

    Built on graphql-core's public `Executor` (its plain executor, as its own
    `execute` uses), handed to Strawberry through its public `execution_context_class`:
    Cobro has no @defer or @stream (the schema declares neither, so validation refuses
    them), and the incremental executor's bookkeeping (~1.9 KB) would live as long
    as each open subscription does. Resolvers get graphql-core's own resolve info;
    Strawberry reads its variables either way and Cobro reads no operation extensions
    (tests/test_layers.py keeps every dependency's private names out of this file)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        operation_extensions = kwargs.pop("operation_extensions", None)
        super().__init__(*args, **kwargs)
        self.operation_extensions = operation_extensions

    def build_per_event_executor(self, payload: Any) -> Any:
        """A fresh executor for each event, through the public constructor.

        graphql-core's own per-event copy shares the subscription's memo of collected
        subfields, keyed by lists made afresh for every event: it never hits across
        events and grew by a few hundred bytes per change for as long as the
        subscription lived. A new executor starts with a memo of its own."""
        executor = type(self)(
            self.schema,
            self.fragment_definitions,
            self.fragments,
            payload,
            self.context_value,
            self.operation,
            self.variable_values,
            self.field_resolver,
            self.type_resolver,
            self.subscribe_field_resolver,
            enable_early_execution=self.enable_early_execution,
            middleware_manager=self.middleware_manager,
            is_awaitable=self.is_awaitable,
            is_async_iterable=self.is_async_iterable,
            hide_suggestions=self.hide_suggestions,
            abort_signal=self.abort_signal,
            hooks=self.hooks,
        )
        executor.operation_extensions = self.operation_extensions
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        # graphql-core runs each subscription event with execute_operation(False).
        if serially is not False or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        try:
            coerced = self.variable_values.coerced
            # As text: orjson's bytes keep its 4 KiB buffer, which a key would pin.
            variables = orjson.dumps(coerced, option=orjson.OPT_SORT_KEYS).decode()
            viewer = getattr(self.context_value, "principal", None)
        except TypeError:  # variables JSON cannot hold (orjson.JSONEncodeError is one)
            return super().execute_operation(serially)
        key = (id(self.root_value), id(self.operation), variables, viewer)
        shared = _executed.get_or_make(self.root_value, key, self._execute_once)
        return self._await_shared(shared) if isinstance(shared, asyncio.Future) else shared

    def _execute_once(self) -> Any:
        result = super().execute_operation(False)
        if not self.is_awaitable(result):
            return result
        # A coroutine can be awaited once; a task, by every subscriber sharing it.
        task = asyncio.ensure_future(result)
        task.add_done_callback(_retrieve)
        return task

    async def _await_shared(self, shared: asyncio.Future[Any]) -> Any:
        """This subscriber's wait for the shared execution; cancelling it (the client
        left) cancels only the wait, never the work the other sharers wait for."""
        try:
            return await asyncio.shield(shared)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not shared.cancelled() or (current is not None and current.cancelling()):
                raise  # this subscriber is the one being cancelled
        # The shared work was cancelled by something else: run this change alone.
        result = super().execute_operation(False)
        return await result if self.is_awaitable(result) else result


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: each sharer still receives it from its own await."""
    if not task.cancelled():
        task.exception()
