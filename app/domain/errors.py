"""Typed domain errors, each with the stable `code` the GraphQL contract exposes.

One small class per case; the data stays on the instance. No HTTP status here:
the edges (GraphQL payloads, the webhook sidecar) decide how to show them.
"""

from __future__ import annotations


class CobroError(Exception):
    """A client-visible failure with a stable machine-readable code."""

    code = "INTERNAL"

    def __init__(self, message: str, field: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidInput(CobroError):
    code = "INVALID_INPUT"


class InvalidAmount(CobroError):
    code = "INVALID_AMOUNT"


class AmountOutOfRange(CobroError):
    code = "AMOUNT_OUT_OF_RANGE"


class UnsupportedCurrency(CobroError):
    code = "UNSUPPORTED_CURRENCY"


class MethodNotAllowed(CobroError):
    code = "METHOD_NOT_ALLOWED"


class MethodUnavailable(CobroError):
    code = "METHOD_UNAVAILABLE"


class InvalidState(CobroError):
    code = "INVALID_STATE"


class NotFound(CobroError):
    code = "NOT_FOUND"


class IdempotencyConflict(CobroError):
    """The key was already used with different input: a client bug, never retry."""

    code = "IDEMPOTENCY_CONFLICT"


class IdempotencyInProgress(CobroError):
    """The same request under this key is still running: retry shortly, same key."""

    code = "IDEMPOTENCY_IN_PROGRESS"


class ProviderUnavailable(CobroError):
    code = "PROVIDER_UNAVAILABLE"


class CardDeclined(CobroError):
    code = "CARD_DECLINED"


class InvalidClabe(CobroError):
    code = "INVALID_CLABE"


class RefundExceedsAmount(CobroError):
    code = "REFUND_EXCEEDS_AMOUNT"


class QuoteExpired(CobroError):
    code = "QUOTE_EXPIRED"


class Unauthenticated(CobroError):
    """No key, or a key we do not know. Shown as a GraphQL error, not a UserError."""

    code = "UNAUTHENTICATED"


class Forbidden(CobroError):
    """A valid key that may not do this. Shown as a GraphQL error, not a UserError."""

    code = "FORBIDDEN"


class PaymentFailed(CobroError):
    """The PSP said no for a reason that is not a card decline."""

    code = "PAYMENT_FAILED"


class ServiceUnavailable(CobroError):
    """A dependency (the database) cannot be reached: nothing was written, retry later."""

    code = "SERVICE_UNAVAILABLE"


class CardTokenInvalid(CobroError):
    """A PSP does not know the card token (it was minted by another PSP, or never)."""

    code = "CARD_TOKEN_INVALID"


class InstallmentsUnavailable(CobroError):
    """No installment plan with that count for this amount, card or route."""

    code = "INSTALLMENTS_UNAVAILABLE"


class CaptureExceedsAuthorized(CobroError):
    code = "CAPTURE_EXCEEDS_AUTHORIZED"


class AuthorizationExpired(CobroError):
    """The authorization lapsed before it was captured: it was voided."""

    code = "AUTHORIZATION_EXPIRED"


class InvalidConcept(CobroError):
    """An SPEI concepto de pago that is empty, too long, or has characters SPEI drops."""

    code = "INVALID_CONCEPT"


class InvalidReference(CobroError):
    """A referencia numérica outside 1..9,999,999."""

    code = "INVALID_REFERENCE"


class PayoutNotCancelable(CobroError):
    """The payout already left for a PSP: only a PENDING payout can be canceled."""

    code = "PAYOUT_NOT_CANCELABLE"


class PersistedQueryNotFound(CobroError):
    """A hash this server does not know yet: the client sends it again with the query."""

    code = "PERSISTED_QUERY_NOT_FOUND"


class PersistedQueryMismatch(CobroError):
    """The query's SHA-256 is not the hash that came with it."""

    code = "PERSISTED_QUERY_HASH_MISMATCH"
