"""Logging: JSON lines in production, readable text in development, and what every
line says about the request it belongs to.

A request's context (request id, merchant, intent or payout, GraphQL operation) lives
in a `contextvars` variable: the HTTP middleware (app/http/observe.py) sets it for each
request, the GraphQL view for each WebSocket (which skips the middleware), and the
code that learns who is calling or which intent moves fills it in. Tasks started
while serving a request (a subscription's operation) inherit it; background jobs
have none. Every formatter adds the context's fields to the line.

Secrets are kept out of logs by not logging them. `redact` is the safety net under
that: API keys (`sk_`, `pk_`), client secrets, webhook secrets (`whsec_`), card
tokens (`tok_`), bearer credentials, `token=` query parameters and 18-digit numbers
(CLABEs) are masked in every message, argument, extra field and traceback, whatever
logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from app.domain.ids import random_token

FORMATS = ("json", "text")
# Longest request id taken from a client's X-Request-Id; anything longer, or with
# characters outside this set, is replaced by one of ours.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(slots=True)
class RequestContext:
    """What a log line says about the request it was written for."""

    request_id: str
    merchant_id: str | None = None
    intent_id: str | None = None
    payout_id: str | None = None
    # The client's operation name (GraphQL names are [_A-Za-z][_0-9A-Za-z]*) and the
    # bounded label metrics use for it: the operation's root field.
    operation: str | None = None
    operation_type: str | None = None
    root_field: str | None = None
    websocket: bool = False


_current: ContextVar[RequestContext | None] = ContextVar("cobro_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def bind(context: RequestContext | None) -> Token[RequestContext | None]:
    return _current.set(context)


def unbind(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def request_id_from(header: bytes | str | None) -> str:
    """The client's X-Request-Id if it is a sane one, else a new random id."""
    if header:
        text = header.decode("latin-1") if isinstance(header, bytes) else header
        if _REQUEST_ID.fullmatch(text):
            return text
    # Letters mostly, so never mistaken for a CLABE by `redact`; from the ids' block of
    # OS randomness (a getrandom call per request was 0.7% of a payment's CPU).
    return random_token(16)


def note(
    *,
    merchant_id: str | None = None,
    intent_id: str | None = None,
    payout_id: str | None = None,
) -> None:
    """Fill in what the current request turned out to be about (no-op outside one)."""
    context = _current.get()
    if context is None:
        return
    if merchant_id is not None:
        context.merchant_id = merchant_id
    if intent_id is not None:
        context.intent_id = intent_id
    if payout_id is not None:
        context.payout_id = payout_id


def note_operation(operation: str | None, operation_type: str, root_field: str) -> None:
    """The GraphQL operation being run. A WebSocket runs many operations on one
    connection's context, each in a task of its own: each gets its own copy."""
    context = _current.get()
    if context is None:
        return
    if context.websocket:
        context = replace(context)
        _current.set(context)
    context.operation = operation
    context.operation_type = operation_type
    context.root_field = root_field


# --- redaction -----------------------------------------------------------------------

_SECRETS = re.compile(
    r"""
    (?P<key>\b(?:sk|pk|rk)_(?:test|live)_[A-Za-z0-9]+)          # API keys
    | (?P<client>\b[a-z]{2,4}_[A-Za-z0-9]+_secret_[A-Za-z0-9]+)  # client secrets
    | (?P<whsec>\bwhsec_[A-Za-z0-9+/=_\-]+)                     # webhook secrets
    | (?P<tok>\btok_[A-Za-z0-9_]+)                              # card tokens
    | (?P<bearer>(?i:bearer)\s+[^\s"',;]+)                      # Authorization values
    | (?P<query>(?i:token|secret|key)=[^\s&"']+)                # secrets in a URL
    | (?P<clabe>(?<!\d)\d{18}(?!\d))                            # CLABEs (18 digits)
    """,
    re.VERBOSE,
)


def _mask(match: re.Match[str]) -> str:
    kind = match.lastgroup
    text = match.group()
    if kind == "clabe":
        return "**************" + text[-4:]
    if kind == "bearer":
        return text.split(None, 1)[0] + " [REDACTED]"
    if kind == "query":
        return text.split("=", 1)[0] + "=[REDACTED]"
    prefix = text.split("_", 1)[0]
    return f"{prefix}_[REDACTED]"


def redact(text: str) -> str:
    """`text` with anything that looks like a secret or a full CLABE masked."""
    return _SECRETS.sub(_mask, text)


_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message (and its arguments, merged in) and its
    string extras, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what was logged, as text
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        for name, value in record.__dict__.items():
            if name not in _STANDARD and isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


# --- formatters ----------------------------------------------------------------------


def _context_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    context = _current.get()
    if context is not None:
        fields["request_id"] = context.request_id
        for name in (
            "merchant_id",
            "intent_id",
            "payout_id",
            "operation",
            "operation_type",
            "root_field",
        ):
            value = getattr(context, name)
            if value is not None:
                fields[name] = value
    for name, value in record.__dict__.items():
        if name not in _STANDARD and not name.startswith("_"):
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's context
    (request_id, merchant_id, intent_id or payout_id, operation), extras such as
    duration_ms, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        line.update(_context_fields(record))
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`12:00:00.123 INFO cobro.access: POST /graphql 200 [request_id=… …]`: for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _context_fields(record)
        if fields:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            head, newline, tail = text.partition("\n")
            text = f"{head} [{extra}]{newline}{tail}"
        return redact(text)


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


def handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler writing `fmt` lines with secrets masked."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(formatter(fmt))
    out.addFilter(RedactSecrets())
    return out


def configure(fmt: str, level: str, stream: TextIO | None = None) -> None:
    """The process's logging: one handler on the root logger. uvicorn's loggers
    propagate to it (cli.py gives uvicorn no logging config of its own)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(fmt, stream))
    root.setLevel(level.upper())
    # Quiet start-up chatter: "Pillow not found" (we draw SVG) and Alembic plugin lists;
    # httpx logs every request URL at INFO (the access log has ours).
    for name in ("pyBarcode", "alembic.runtime.plugins", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
