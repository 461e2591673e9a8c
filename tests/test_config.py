"""Settings: the sandbox's public credentials never reach production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from providers.registry import ADAPTERS


def real(name: str) -> dict[str, object]:
    return {
        "base_url": f"https://api.{name}.example",
        "api_key": f"key-{name}",
        "webhook_secrets": [f"whsec-{name}"],
    }


def test_outside_production_blanks_are_the_sandbox_credentials():
    stripe = Settings(env="development").provider("stripe")
    assert stripe.api_key.get_secret_value() == "sandbox"
    assert [s.get_secret_value() for s in stripe.webhook_secrets] == ["sandbox"]


def test_production_needs_a_base_url_for_every_routed_psp():
    with pytest.raises(ValidationError, match="COBRO_PROVIDERS__STRIPE__BASE_URL"):
        Settings(env="production")


def test_production_refuses_the_sandbox_secrets():
    providers = {name: real(name) for name in ADAPTERS}
    providers["stripe"] = {**real("stripe"), "webhook_secrets": ["sandbox"]}
    providers["stp"] = {**real("stp"), "api_key": ""}
    with pytest.raises(ValidationError) as caught:
        Settings(env="production", providers=providers)
    assert "STRIPE__WEBHOOK_SECRETS" in str(caught.value)
    assert "STP__API_KEY" in str(caught.value)


def test_production_with_real_settings_starts_and_fills_nothing_in():
    settings = Settings(env="production", providers={name: real(name) for name in ADAPTERS})
    assert not settings.sandbox_enabled
    assert settings.provider("bitso").api_key.get_secret_value() == "key-bitso"
    unset = Settings(env="production", providers={n: real(n) for n in ADAPTERS})
    assert unset.provider("nobody").webhook_secrets == []  # fail closed
