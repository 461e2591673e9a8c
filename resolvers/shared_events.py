"""One execution per change for every subscriber that asked the same question.

A change reaches each subscriber of a channel as the same object (app/events/
broker.py FanOut). Executing the subscription's selection set over it is the same
work for every subscriber with the same document, variables and principal, and was
a quarter of a 1,000-subscriber fan-out (bench/RESULTS.md). So the presented
object and the execution result are shared: the first subscriber computes them, the
rest reuse them. Each subscriber still gets its own message (its operation id) and
its own error handling downstream.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import orjson
from graphql import OperationType
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Recent changes kept for sharing: a burst of distinct changes in one loop turn.
REMEMBERED = 64


class _Recent:
    """A small LRU whose entries keep their source object alive, so an id() in a key
    cannot be reused by another object while the entry exists."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[object, Any]] = OrderedDict()

    def get_or_make(self, source: object, key: Hashable, make: Callable[[], Any]) -> Any:
        entry = self._entries.get(key)
        if entry is not None and entry[0] is source:
            return entry[1]
        value = make()
        self._entries[key] = (source, value)
        if len(self._entries) > REMEMBERED:
            self._entries.popitem(last=False)
        return value


_presented = _Recent()
_executed = _Recent()


def present_shared(intent: object, viewer: Hashable, make: Callable[[], Any]) -> Any:
    """The GraphQL object for `intent` as `viewer` sees it, made once per change."""
    return _presented.get_or_make(intent, (id(intent), viewer), make)


class SharedEventExecution(ExecutorThrowingOnIncremental):
    """Strawberry's execution context, sharing subscription-event results.

    It stands on graphql-core's plain executor, as graphql-core's own `execute` does,
    rather than the incremental one Strawberry picks: Cobro has no @defer or @stream,
    and the incremental executor's bookkeeping (~1.9 KB) lives as long as each open
    subscription does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        operation_extensions = kwargs.pop("operation_extensions", None)
        super().__init__(*args, **kwargs)
        self.operation_extensions = operation_extensions

    # Strawberry's resolve info (with the operation's extensions), as its own context has.
    build_resolve_info = StrawberryGraphQLCoreExecutionContext.build_resolve_info

    def execute_operation(self, serially: bool | None = None) -> Any:
        # graphql-core runs each subscription event with execute_operation(False).
        if serially is not False or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        try:
            coerced = self.variable_values.coerced
            variables = orjson.dumps(coerced, option=orjson.OPT_SORT_KEYS)
            viewer = getattr(self.context_value, "principal", None)
        except TypeError:  # variables JSON cannot hold (orjson.JSONEncodeError is one)
            return super().execute_operation(serially)
        key = (id(self.root_value), id(self.operation), variables, viewer)
        return _executed.get_or_make(self.root_value, key, self._execute_once)

    def _execute_once(self) -> Any:
        result = super().execute_operation(False)
        # A coroutine can be awaited once; a task, by every subscriber sharing it.
        return asyncio.ensure_future(result) if self.is_awaitable(result) else result
