"""Production endpoints: https only, and never into a private network."""

from __future__ import annotations

import pytest

from app.domain.errors import InvalidInput
from app.services.url_guard import check_url, pinned, resolve_public


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://merchant.example/hooks", "https://"),
        ("https://127.0.0.1/hooks", "private network"),
        ("https://10.0.0.7/hooks", "private network"),
        ("https://169.254.169.254/latest/meta-data", "private network"),
        ("https://[::1]/hooks", "private network"),
        ("https://user:pw@merchant.example/", "credentials"),
        ("https:///nohost", "no host"),
        ("https://[::1", "not a valid URL"),
        ("https://merchant.example:99999/", "not a valid URL"),
        ("https://merchant.example/a\x07b", "control characters"),
        ("https://merchant.example/a b", "spaces"),
    ],
)
def test_production_refuses(url, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        check_url(url, allow_private=False)


def test_production_accepts_public_https():
    assert check_url(" https://merchant.example/hooks ", allow_private=False) == (
        "https://merchant.example/hooks"
    )


def test_outside_production_loopback_http_is_fine():
    assert check_url("http://127.0.0.1:9000/hooks", allow_private=True)


async def test_a_name_that_resolves_to_loopback_is_refused():
    with pytest.raises(InvalidInput, match="private address"):
        await resolve_public("https://localhost/hooks")


def test_a_delivery_connects_to_the_address_that_was_checked():
    url, headers, extensions = pinned("https://merchant.example:8443/hooks?a=1", "93.184.216.34")
    assert url == "https://93.184.216.34:8443/hooks?a=1"
    assert headers == {"Host": "merchant.example:8443"}
    assert extensions == {"sni_hostname": "merchant.example"}
    url, _, _ = pinned("https://merchant.example/hooks", "2606:2800::1")
    assert url == "https://[2606:2800::1]/hooks"
