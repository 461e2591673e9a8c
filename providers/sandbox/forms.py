"""Decode Stripe-style bracketed form keys (a[b][0]=c) into nested dicts and lists."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")
# A hostile client could send a[0][0][0]...; nobody legitimate nests this deep.
MAX_DEPTH = 6


class FormError(ValueError):
    pass


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        if "[" in key or "]" in key:
            parts = [
                m.group(1) if m.group(1) is not None else m.group(2) for m in _KEY.finditer(key)
            ]
        else:  # what the expression finds in a plain name, without running it
            parts = [key] if key else []
        if not parts or len(parts) > MAX_DEPTH:
            raise FormError(f"unusable parameter name {key!r}")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            node = _child(node, part, following)
        _assign(node, parts[-1], value)
    # The root stays a dict, whatever its keys: only nested nodes may become lists.
    return {k: _lists(v) for k, v in root.items()}


def _child(node: Any, part: str, following: str) -> Any:
    container: Any = {} if not (following == "" or following.isdigit()) else {"__list__": True}
    if isinstance(node, dict):
        return node.setdefault(part, container)
    raise FormError("parameter names mix values and nested keys")


def _assign(node: Any, part: str, value: str) -> None:
    if not isinstance(node, dict):
        raise FormError("parameter names mix values and nested keys")
    if part == "":
        part = str(sum(1 for k in node if k != "__list__"))
    node[part] = value


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node.pop("__list__", False):
        return [_lists(node[k]) for k in sorted(node, key=lambda k: int(k) if k.isdigit() else 0)]
    return {k: _lists(v) for k, v in node.items()}
