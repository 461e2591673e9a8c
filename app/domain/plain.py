"""A dataclass to and from a plain dict (JSON columns, broker messages, database rows),
derived from the dataclass's own fields: a field is declared once, on the dataclass,
and every plain form of it follows.

What a field becomes is decided by its type:

- `Money`: its minor units under the field's name, and the currency once, under
  `currency` (a record's amounts share one currency); or, with
  `money=MoneyForm.DECIMAL`, `{"amount": "12.34", "currency": "MXN"}` per field.
- an enum: its value; a tuple of enums: a list of values.
- `datetime`: ISO text, or the value itself with `times=Times.NATIVE` (database rows,
  whose columns are datetimes).
- a nested dataclass: its own plain form (always JSON: it lands in a JSON column).
- a type given in `rules`: that pair of functions (a tagged union, say).
- str, int, bool, JSON dicts and lists, `Any`: as they are.
Any other type is refused when the codec is built, so a field of a new type cannot
slip through a plain form unconverted. A field with a default may be missing from
old data (or be None there) and then takes its default.

The two functions are generated as Python source and compiled once per codec, the
way `dataclasses` makes `__init__`: reading a row costs what a hand-written mapping
did, and the repositories read one per intent (the write path is tight).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from app.domain.money import Currency, Money

R = TypeVar("R")

# Types kept as they are in every plain form.
_AS_IS: frozenset[object] = frozenset({str, int, bool, Any})
_AS_IS_ORIGINS: frozenset[object] = frozenset({dict, list})


class Times(enum.Enum):
    ISO = "iso"  # text, for JSON
    NATIVE = "native"  # datetime objects, for database columns


class MoneyForm(enum.Enum):
    MINOR = "minor"  # minor units per field, one shared `currency` key
    DECIMAL = "decimal"  # {"amount": decimal string, "currency": code} per field


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """How one type becomes plain and back; both functions take and give None too."""

    to_plain: Callable[[Any], Any]
    from_plain: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _Conversion:
    """Source fragments for one field's value, `{}` standing for it (None: as it is)."""

    encode: str | None
    decode: str | None
    optional: bool = False  # None is a value of the field's type
    money: bool = False  # minor units under the record's shared currency


class Codec(Generic[R]):
    """`to_plain(record) -> dict` and `from_plain(mapping) -> record` for dataclass `cls`.

    `exclude` names fields left out of the plain form (they take their defaults when
    read back); `key` names a field's key (camelCase for a public payload, say);
    `complete=True` says every key is always present (a database row), so none is
    looked up with `.get`."""

    def __init__(
        self,
        cls: type[R],
        *,
        times: Times = Times.ISO,
        money: MoneyForm = MoneyForm.MINOR,
        rules: Mapping[object, Rule] | None = None,
        exclude: tuple[str, ...] = (),
        key: Callable[[str], str] = str,
        complete: bool = False,
    ) -> None:
        hints = typing.get_type_hints(cls)
        declared = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(exclude) - declared.keys()
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)}")
        self.cls = cls
        self.fields = tuple(f for f in declared.values() if f.name not in exclude)
        self.keys = {f.name: key(f.name) for f in self.fields}
        self._times = times
        self._money = money
        self._rules = dict(rules or {})
        self._namespace: dict[str, Any] = {
            "_cls": cls,
            "_Currency": Currency,
            "_Money": Money,
            "_datetime": datetime.fromisoformat,
        }
        conversions = {f.name: self._conversion(cls, f.name, hints[f.name]) for f in self.fields}
        shares_currency = any(c.money for c in conversions.values())
        if shares_currency and "currency" in self.keys.values():
            raise TypeError(f"{cls.__name__}: a field's key clashes with the shared currency")
        self.source = self._encoder(conversions) + "\n" + self._decoder(conversions, complete)
        # Source built from field names and fixed fragments only, never from data.
        code = compile(self.source, f"<plain codec of {cls.__name__}>", "exec")
        exec(code, self._namespace)  # noqa: S102
        self.to_plain: Callable[[R], dict[str, Any]] = self._namespace["to_plain"]
        self.from_plain: Callable[[Mapping[Any, Any]], R] = self._namespace["from_plain"]
        if money is MoneyForm.DECIMAL:
            self.from_plain = _written_only

    # -- one field -------------------------------------------------------------------

    def _conversion(self, owner: type, name: str, hint: Any) -> _Conversion:
        optional, hint = _strip_none(hint)
        conversion = self._typed(owner, name, hint)
        if optional and conversion.money:
            raise TypeError(f"{owner.__name__}.{name}: an optional amount has no currency")
        return dataclasses.replace(conversion, optional=optional)

    def _typed(self, owner: type, name: str, hint: Any) -> _Conversion:
        if hint in self._rules:
            return self._call(name, self._rules[hint].to_plain, self._rules[hint].from_plain)
        if hint in _AS_IS or typing.get_origin(hint) in _AS_IS_ORIGINS:
            return _Conversion(None, None)
        if hint is Money:
            if self._money is MoneyForm.DECIMAL:
                encode = '{"amount": {}.to_decimal_string(), "currency": {}.currency.value}'
                return _Conversion(encode, None)
            return _Conversion("{}.minor", "_Money({}, currency)", money=True)
        if hint is datetime:
            if self._times is Times.NATIVE:
                return _Conversion(None, None)
            return _Conversion("{}.isoformat()", "_datetime({})")
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            self._namespace[f"_{name}_type"] = hint
            return _Conversion("{}.value", f"_{name}_type({{}})")
        item = _enum_of_tuple(hint)
        if item is not None:
            self._namespace[f"_{name}_type"] = item
            return _Conversion("[item.value for item in {}]", f"tuple(map(_{name}_type, {{}}))")
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            # Nested values land in JSON, whatever form the record takes.
            nested: Codec[Any] = Codec(hint, rules=self._rules)
            return self._call(name, nested.to_plain, nested.from_plain)
        raise TypeError(f"{owner.__name__}.{name}: no plain form for {hint!r}; give it a Rule")

    def _call(
        self, name: str, to_plain: Callable[[Any], Any], from_plain: Callable[[Any], Any]
    ) -> _Conversion:
        """A conversion by functions, bound to names in the generated code's globals."""
        self._namespace[f"_{name}_to_plain"] = to_plain
        self._namespace[f"_{name}_from_plain"] = from_plain
        return _Conversion(f"_{name}_to_plain({{}})", f"_{name}_from_plain({{}})")

    # -- the generated functions -----------------------------------------------------

    def _encoder(self, conversions: dict[str, _Conversion]) -> str:
        items = []
        currency_written = False
        for field in self.fields:
            conversion = conversions[field.name]
            value = f"record.{field.name}"
            if conversion.money and not currency_written:
                items.append(f"'currency': {value}.currency.value")
                currency_written = True
            if conversion.encode is not None:
                encoded = conversion.encode.replace("{}", value)
                value = (
                    f"None if {value} is None else {encoded}" if conversion.optional else encoded
                )
            items.append(f"{self.keys[field.name]!r}: {value}")
        body = "".join(f"        {item},\n" for item in items)
        return f"def to_plain(record):\n    return {{\n{body}    }}\n"

    def _decoder(self, conversions: dict[str, _Conversion], complete: bool) -> str:
        lines = ["def from_plain(data):"]
        if any(c.money for c in conversions.values()):
            lines.append('    currency = _Currency(data["currency"])')
        arguments = []
        for field in self.fields:
            name, key = field.name, self.keys[field.name]
            conversion = conversions[field.name]
            has_default = _has_default(field)
            raw = f"data[{key!r}]" if complete or not has_default else f"data.get({key!r})"
            # What None (or, in older data, a missing key) becomes.
            if has_default:
                fallback: str | None = self._default(field)
            else:
                fallback = "None" if conversion.optional else None
            if conversion.decode is None and fallback in (None, "None"):
                arguments.append(f"{name}={raw}")
            elif fallback is None:
                arguments.append(f"{name}={(conversion.decode or '{}').replace('{}', raw)}")
            else:
                lines.append(f"    {name} = {raw}")
                value = (conversion.decode or "{}").replace("{}", name)
                arguments.append(f"{name}={fallback} if {name} is None else {value}")
        lines.append("    return _cls(")
        lines += [f"        {argument}," for argument in arguments]
        lines.append("    )")
        return "\n".join(lines) + "\n"

    def _default(self, field: dataclasses.Field[Any]) -> str:
        """Source for the field's default: None inline, anything else by name."""
        if field.default is None:
            return "None"
        if field.default is not dataclasses.MISSING:
            self._namespace[f"_{field.name}_default"] = field.default
            return f"_{field.name}_default"
        self._namespace[f"_{field.name}_factory"] = field.default_factory
        return f"_{field.name}_factory()"


def _written_only(data: Mapping[Any, Any]) -> Any:
    raise TypeError("a plain form with decimal amounts is a payload: written, never read")


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    )


def _strip_none(hint: Any) -> tuple[bool, Any]:
    """(whether None is allowed, the type without None)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        rest = tuple(a for a in args if a is not type(None))
        if len(rest) < len(args):
            return True, rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return False, hint


def _enum_of_tuple(hint: Any) -> type[enum.Enum] | None:
    """E for `tuple[E, ...]` where E is an enum."""
    if typing.get_origin(hint) is not tuple:
        return None
    args = typing.get_args(hint)
    item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
    return item if isinstance(item, type) and issubclass(item, enum.Enum) else None
