"""What a mutation returns: the intent it produced and any errors to show with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain import errors
from app.domain.codec import intent_from_dict, intent_to_dict
from app.domain.errors import CobroError
from app.domain.intents import PaymentIntent

# code -> class, to rebuild stored errors when an idempotent result is replayed.
_ERRORS_BY_CODE = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, CobroError)
}


@dataclass(frozen=True, slots=True)
class MutationResult:
    intent: PaymentIntent | None
    errors: tuple[CobroError, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": intent_to_dict(self.intent) if self.intent else None,
            "errors": [
                {"code": e.code, "message": e.message, "field": list(e.field or ())}
                for e in self.errors
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MutationResult:
        return cls(
            intent=intent_from_dict(data["intent"]) if data.get("intent") else None,
            errors=tuple(
                _ERRORS_BY_CODE.get(e["code"], CobroError)(e["message"], tuple(e["field"]) or None)
                for e in data.get("errors", ())
            ),
        )
