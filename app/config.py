"""Settings: `COBRO_*` environment variables over an optional TOML file over defaults.

Built once at start-up and passed down; nothing reads the environment later.
Provider routing and amount ranges default to contract section 4.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, Literal

from limits import parse_many
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from app.domain.cards import MAX_INSTALLMENTS
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money, parse_amount


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class MethodRoute(BaseModel):
    """Which providers serve a method, in order of preference, and for what amounts."""

    providers: list[str]
    min_amount: str
    max_amount: str

    @field_validator("min_amount", "max_amount")
    @classmethod
    def _exact_amount(cls, value: str) -> str:
        parse_amount(value, Currency.MXN)
        return value

    def amount_range(self, currency: Currency = Currency.MXN) -> tuple[Money, Money]:
        return parse_amount(self.min_amount, currency), parse_amount(self.max_amount, currency)


DEFAULT_ROUTES: dict[PaymentMethodType, dict[str, Any]] = {
    PaymentMethodType.CARD: {
        "providers": ["stripe", "conekta"],
        "min_amount": "10.00",
        "max_amount": "999999.99",
    },
    PaymentMethodType.OXXO: {
        "providers": ["stripe", "conekta"],
        "min_amount": "10.00",
        "max_amount": "10000.00",
    },
    PaymentMethodType.SPEI: {
        "providers": ["stp", "conekta"],
        "min_amount": "1.00",
        "max_amount": "999999.99",
    },
    PaymentMethodType.CRYPTO: {
        "providers": ["bitso"],
        "min_amount": "100.00",
        "max_amount": "200000.00",
    },
}


# The sandbox's credentials: public, so never acceptable in production.
SANDBOX_CREDENTIAL = "sandbox"
SANDBOX_SECRETS = frozenset({"", SANDBOX_CREDENTIAL})


class ProviderSettings(BaseModel):
    """How to reach one PSP. No base_url outside production means the embedded sandbox;
    empty credentials outside production mean the sandbox's (public) ones."""

    base_url: str | None = None
    api_key: SecretStr = SecretStr("")
    api_secret: SecretStr = SecretStr("")
    # Several secrets are accepted at once while a rolled secret is still valid. None
    # means no signature verifies: fail closed.
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    # PSP-specific settings, passed to the adapter as they are (see its module docstring).
    options: dict[str, str] = Field(default_factory=dict)
    # Cards: the key a checkout tokenizes with at this PSP, and where (unset: the PSP's
    # own tokenizer, or the sandbox's outside production); the meses sin intereses
    # plans offered here, months -> minimum amount in MXN (unset: contract section 7's).
    publishable_key: str = ""
    tokenize_url: str | None = None
    installment_plans: dict[int, str] | None = None

    @field_validator("installment_plans")
    @classmethod
    def _plans(cls, value: dict[int, str] | None) -> dict[int, str] | None:
        for count, amount in (value or {}).items():
            if not 2 <= count <= MAX_INSTALLMENTS:
                raise ValueError(f"{count} months is not a plan (2 to {MAX_INSTALLMENTS})")
            parse_amount(amount, Currency.MXN)
        return value


class RateLimits(BaseModel):
    """Requests per key kind, in the `limits` library's notation: "100/second",
    "100/second;3000/minute"; "" for none. Defaults above what `make bench` sends
    with one secret key (2,500 reads/s), far above what a checkout or a merchant's
    back end needs; lower them to what yours do."""

    secret: str = "5000/second"
    publishable: str = "1000/second"
    client_secret: str = "50/second"

    @field_validator("secret", "publishable", "client_secret")
    @classmethod
    def _parses(cls, value: str) -> str:
        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a rate limit such as '100/second' or "
                    "'100/second;3000/minute' (empty for none)"
                ) from None
        return value

    def parsed(self) -> dict[Any, list[Any]]:
        """KeyKind value -> limits' items."""
        return {
            kind: list(parse_many(text)) if text.strip() else []
            for kind, text in (
                ("secret", self.secret),
                ("publishable", self.publishable),
                ("client_secret", self.client_secret),
            )
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COBRO_",
        env_nested_delimiter="__",
        extra="ignore",
        toml_file="cobro.toml",
    )

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./var/cobro.db"
    # PostgreSQL's short path (app/db/postgres.py): our own connection list, kept
    # statements as asyncpg prepared statements. Off: plain SQLAlchemy (its pool,
    # engine.begin() and connect()), for when an upgrade of SQLAlchemy or asyncpg
    # breaks the private attributes the short path relies on.
    postgres_fast_path: bool = True
    # SQLite's prepared statements (app/db/prepared.py), read from SQLAlchemy's
    # compilation through private attributes. Off: every statement through SQLAlchemy,
    # for when an upgrade breaks them.
    sqlite_prepared: bool = True
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "COBRO_PORT"))
    # Where people and PSPs reach us; hosted voucher and 3-D Secure links start here.
    public_url: str | None = None
    log_level: str = "info"
    # "json" (one object per line) or "text" (for people); unset: json in production,
    # text elsewhere (app/logs.py).
    log_format: Literal["json", "text"] | None = None
    # `cobro worker` serves /metrics on this port when set (an API process serves it on
    # its own port).
    metrics_port: int | None = None
    # On SIGTERM: requests in flight get this long to finish (WebSockets are closed
    # at once with 1012, "service restart", which clients reconnect on). Below the
    # usual 30 s between an orchestrator's SIGTERM and its SIGKILL.
    graceful_shutdown_seconds: float = 25.0

    # Where the sandbox posts PSP webhooks; unset means this process, in-process.
    # Point several API processes' sandboxes at one of them to test a cluster.
    sandbox_webhook_url: str | None = None

    dev_secret_key: str = "sk_test_dev"
    dev_publishable_key: str = "pk_test_dev"

    methods: dict[PaymentMethodType, MethodRoute] = Field(default_factory=dict)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)

    # Each PSP call must give up well before the sandbox's 10 s "slow" mode answers.
    provider_timeout_seconds: float = 3.0
    provider_connect_timeout_seconds: float = 1.0
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 30.0
    # A confirmation holds its intent this long at most; longer than every provider
    # timing out in turn, so a crashed process never blocks an intent for good.
    confirm_lease_seconds: float = 60.0
    # A PSP call left without an answer this long (its process died, or the PSP went
    # silent) is replayed by the worker, same key and same bytes, to learn what it did.
    unanswered_seconds: float = 60.0
    # How long an SPEI reference waits for the transfer.
    spei_expiry_hours: float = 72.0
    # Run the background jobs (expiry, merchant webhooks, reconciliation) in the API
    # process too. The embedded default; production runs `cobro worker` and sets false.
    embedded_worker: bool = True
    expiry_sweep_seconds: float = 5.0
    delivery_poll_seconds: float = 0.5
    # First retry of a failed merchant webhook after about this long, doubling after.
    webhook_retry_base_seconds: float = 5.0
    # Ask the PSP about intents that heard nothing for this long, at most this often.
    reconcile_after_seconds: float = 600.0
    reconcile_every_seconds: float = 600.0
    outbox_retention_days: float = 7.0

    # Who sends SPEI payouts (contract section 8), in order of failover; refunds of
    # OXXO, SPEI and crypto payments are payouts too.
    payout_providers: list[str] = Field(default_factory=lambda: ["stp", "conekta"])
    # Where a paid payout's CEP is looked up; default: Banxico, or the sandbox's stand-in.
    cep_url: str | None = None

    # Hostile-query limits: depth of selections, tokens in the document, aliases,
    # and bytes in the HTTP body.
    max_query_depth: int = 10
    max_query_tokens: int = 2_000
    max_query_aliases: int = 30
    max_body_bytes: int = 64 * 1024

    # Per key (contract section 10); app/services/rate_limits.py.
    rate_limits: RateLimits = Field(default_factory=RateLimits)

    @field_validator("methods", mode="before")
    @classmethod
    def _fill_method_defaults(cls, value: Any) -> dict[str, Any]:
        merged: dict[str, Any] = {m.value: dict(route) for m, route in DEFAULT_ROUTES.items()}
        for name, route in (value or {}).items():
            key = PaymentMethodType(str(name).upper()).value
            merged[key] = {**merged[key], **dict(route)}
        return merged

    @model_validator(mode="after")
    def _production_needs_real_providers(self) -> Settings:
        """Production has no sandbox: every routed PSP needs its own address and its
        own credentials (the sandbox's are public, so anyone could forge with them)."""
        if self.env is not Environment.PRODUCTION:
            return self
        problems = []
        for name in sorted({n for route in self.methods.values() for n in route.providers}):
            own = self.providers.get(name)
            if own is None or not own.base_url:
                problems.append(f"COBRO_PROVIDERS__{name.upper()}__BASE_URL")
                continue
            if own.api_key.get_secret_value() in SANDBOX_SECRETS:
                problems.append(f"COBRO_PROVIDERS__{name.upper()}__API_KEY")
            if any(s.get_secret_value() in SANDBOX_SECRETS for s in own.webhook_secrets):
                problems.append(f"COBRO_PROVIDERS__{name.upper()}__WEBHOOK_SECRETS")
        if problems:
            raise ValueError("production needs real settings for: " + ", ".join(problems))
        return self

    @property
    def resolved_log_format(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.env is Environment.PRODUCTION else "text"

    @property
    def sandbox_enabled(self) -> bool:
        return self.env is not Environment.PRODUCTION

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def provider(self, name: str) -> ProviderSettings:
        """A PSP's settings; outside production, blanks filled with the sandbox's."""
        own = self.providers.get(name) or ProviderSettings()
        if not self.sandbox_enabled:
            return own
        sandbox = SecretStr(SANDBOX_CREDENTIAL)
        return own.model_copy(
            update={
                "api_key": own.api_key if own.api_key.get_secret_value() else sandbox,
                "api_secret": own.api_secret if own.api_secret.get_secret_value() else sandbox,
                "webhook_secrets": own.webhook_secrets or [sandbox],
                "publishable_key": own.publishable_key or SANDBOX_CREDENTIAL,
            }
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)


def _config_file() -> Path:
    """`COBRO_CONFIG_FILE`, else ./cobro.toml; a missing file is simply no settings."""
    return Path(os.environ.get("COBRO_CONFIG_FILE", "cobro.toml"))
