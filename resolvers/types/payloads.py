"""Mutation payloads: the object, plus `errors` for what went wrong (errors are data)."""

from __future__ import annotations

import strawberry

from app.domain.errors import CobroError
from app.metrics import count_error
from resolvers.types.intent import PaymentIntent


@strawberry.type
class UserError:
    code: str
    message: str
    field: list[str] | None

    @classmethod
    def from_error(cls, error: CobroError) -> UserError:
        count_error("user", error.code)
        return cls(code=error.code, message=error.message, field=list(error.field or ()) or None)


@strawberry.type
class PaymentIntentPayload:
    payment_intent: PaymentIntent | None
    errors: list[UserError]
