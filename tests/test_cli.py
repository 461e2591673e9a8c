"""The `cobro` command as people use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone


def run_cobro(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COBRO_DATABASE_URL": db, "COBRO_ENV": "test"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_merchants_create_prints_one_json_line(database_url):
    done = run_cobro("merchants", "create", "--name", "Tacos El Güero", db=database_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    merchant = json.loads(lines[0])
    assert set(merchant) == {"merchant_id", "secret_key", "publishable_key"}
    assert merchant["secret_key"].startswith("sk_test_")
    assert merchant["publishable_key"].startswith("pk_test_")
    again = json.loads(run_cobro("merchants", "create", "--name", "B", db=database_url).stdout)
    assert again["merchant_id"] != merchant["merchant_id"]


def test_merchants_create_needs_a_name(database_url):
    done = run_cobro("merchants", "create", "--name", "  ", db=database_url)
    assert done.returncode != 0
    assert "--name" in done.stderr


def test_export_schema_prints_the_sdl(database_url):
    done = run_cobro("export-schema", db=database_url)
    assert done.returncode == 0
    assert "type PaymentIntent" in done.stdout
