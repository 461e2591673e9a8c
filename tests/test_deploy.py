"""The deployment: compose.yaml, the Dockerfile, deploy/nginx.conf.

No Docker daemon is needed. What is checked here: the compose file against the
compose-spec schema and against the README's rules for running several processes,
the Dockerfile through hadolint, the nginx configuration through `nginx -t` (when
nginx is installed), and the image's entrypoint, run directly from a wheel built
out of exactly what the Dockerfile copies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from app.config import Settings
from providers.registry import ADAPTERS
from tests.support.process import STARTUP_TIMEOUT
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
BIN = Path(sys.executable).parent
COBRO_ROLES = ("migrate", "api", "worker")
# README "Running more than one process": the only settings that may differ.
MAY_DIFFER = {
    "PORT",
    "COBRO_HOST",
    "COBRO_PORT",
    "COBRO_LOG_LEVEL",
    "COBRO_LOG_FORMAT",
    "COBRO_METRICS_PORT",
    "COBRO_EMBEDDED_WORKER",
    "COBRO_GRACEFUL_SHUTDOWN_SECONDS",
}


def tool(name: str) -> str:
    """A dev-extra command (pyproject.toml), installed next to this interpreter."""
    path = BIN / name
    assert path.exists(), f"{name} is missing: `make install` installs the dev extras"
    return str(path)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


# --- compose.yaml ---------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec():
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_does_refuse_a_broken_file(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_periods:", 1),
        encoding="utf-8",
    )
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0


def test_services_and_the_one_way_in(services):
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "lb"}
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["lb"]
    assert published["lb"] == ["8080:8080"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["api"]["expose"] == ["8000"]


def test_migration_runs_once_before_every_cobro_process(services):
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["lb"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    # One image, built once, for the three roles.
    assert {services[n]["image"] for n in COBRO_ROLES} == {"cobro:local"}
    assert {services[n]["build"] for n in COBRO_ROLES} == {"."}


def test_health_checks(services):
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["lb"]["healthcheck"]["test"])
    # The image's HTTP check would fail on the roles that serve no HTTP.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["worker"]["healthcheck"] == {"disable": True}


def test_every_cobro_process_has_the_same_shared_settings(services):
    envs = {name: env_of(services[name]) for name in COBRO_ROLES}
    shared = {
        name: {k: v for k, v in env.items() if k not in MAY_DIFFER} for name, env in envs.items()
    }
    assert shared["api"] == shared["worker"] == shared["migrate"]
    env = shared["api"]
    for key in ("COBRO_ENV", "COBRO_DATABASE_URL", "COBRO_REDIS_URL", "COBRO_PUBLIC_URL"):
        assert env.get(key), key
    for name in ADAPTERS:
        assert env.get(f"COBRO_PROVIDERS__{name.upper()}__BASE_URL"), name
    assert envs["api"]["COBRO_EMBEDDED_WORKER"] == "false"


def test_the_settings_start_and_reach_the_shared_sandbox(services, monkeypatch):
    """The api's environment as `cobro serve` would read it: not refused, sandbox on,
    every PSP through the load balancer, and addresses that match the other services."""
    for key in list(os.environ):
        if key.startswith("COBRO_") or key == "PORT":
            monkeypatch.delenv(key)
    monkeypatch.setenv("COBRO_CONFIG_FILE", "/nonexistent/cobro.toml")
    for key, value in env_of(services["api"]).items():
        monkeypatch.setenv(key, value)
    settings = Settings()

    assert settings.sandbox_enabled  # production would refuse the sandbox's PSPs
    assert settings.embedded_worker is False
    lb_port = int(re.search(r"^\s*listen\s+(\d+);", NGINX_CONF.read_text(), re.M).group(1))
    assert services["lb"]["ports"] == [f"{lb_port}:{lb_port}"]
    for name in ADAPTERS:
        assert settings.provider(name).base_url == f"http://lb:{lb_port}/sandbox/{name}"
    assert settings.sandbox_webhook_url == f"http://lb:{lb_port}"
    assert urlsplit(settings.base_url).port == lb_port  # the published port
    assert settings.port == 8000  # what `expose`, nginx and the health check use

    database = urlsplit(settings.database_url)
    postgres = services["postgres"]["environment"]
    assert database.scheme == "postgresql+asyncpg"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.password, database.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    assert urlsplit(settings.redis_url).hostname == "redis"
    # Docker's SIGKILL comes only after the graceful shutdown has had its time.
    grace = services["api"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > settings.graceful_shutdown_seconds


def test_the_load_balancer_config(services):
    conf = NGINX_CONF.read_text()
    assert services["lb"]["volumes"] == ["./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert "resolver 127.0.0.11" in conf  # Docker's DNS, asked again: every replica
    assert re.search(r"set \$api http://api:8000;\s*proxy_pass \$api;", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "proxy_http_version 1.1;" in conf


# Debian's nginx, which `make test` installs (in /usr/sbin, off a user's PATH).
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make system-deps)")
def test_nginx_accepts_the_config(tmp_path):
    """`nginx -t` on a copy pointed at loopback, with its own pid and log files."""
    assert NGINX is not None
    conf = NGINX_CONF.read_text().replace("http://api:8000", "http://127.0.0.1:8000")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    copy = tmp_path / "nginx.conf"
    copy.write_text(conf)
    done = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(copy)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


# --- Dockerfile -----------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), one list per stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), " ".join(args.split())))
    return stages


def instruction(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def test_hadolint_finds_nothing():
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_image_is_multi_stage_slim_and_runs_without_privileges():
    build, run = dockerfile_stages()
    assert instruction(build, "FROM") == ["python:3.11-slim AS build"]
    assert instruction(run, "FROM") == ["python:3.11-slim"]
    assert instruction(run, "COPY") == ["--from=build /opt/cobro /opt/cobro"]
    # Nothing is installed at run time: no package manager, compiler or pip install.
    for args in instruction(run, "RUN"):
        assert not re.search(r"apt|apk|pip|gcc|build-essential", args), args
    user = instruction(run, "USER")
    assert len(user) == 1 and user[0].split(":")[0] not in ("0", "root")
    assert instruction(run, "ENTRYPOINT") == ['["cobro"]']
    assert instruction(run, "CMD") == ['["serve"]']
    assert instruction(run, "HEALTHCHECK")
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", "tests", "var"} <= ignored


# --- the entrypoint, run directly ----------------------------------------------------


@pytest.fixture(scope="module")
def image_site(tmp_path_factory) -> Path:
    """What the image's venv gets: a wheel of what the build stage COPYs, unpacked."""
    work = tmp_path_factory.mktemp("image")
    source = work / "src"
    source.mkdir()
    build_stage = dockerfile_stages()[0]
    for args in instruction(build_stage, "COPY"):
        *paths, _destination = args.split()
        for name in paths:
            origin = ROOT / name
            if origin.is_dir():
                shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(origin, source / name)
    # Offline: this venv's setuptools (a dev extra) instead of an isolated download.
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip_wheel, "--quiet", "--wheel-dir", str(work / "dist"), str(source)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    (wheel,) = (work / "dist").glob("cobro-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def entrypoint(site: Path) -> list[str]:
    """The image's `cobro`: the wheel's console script, on the wheel's own code."""
    (entry_points,) = site.glob("cobro-*.dist-info/entry_points.txt")
    scripts = re.search(r"\[console_scripts\]\s*cobro\s*=\s*(\S+):(\S+)", entry_points.read_text())
    assert scripts, "the wheel has no `cobro` command"
    module, function = scripts.groups()
    code = (
        f"import sys, {module} as m; "
        f"assert m.__file__.startswith({str(site)!r}), m.__file__; "
        f"sys.argv[0] = 'cobro'; sys.exit(m.{function}())"
    )
    return [sys.executable, "-c", code]


def image_env(tmp_path: Path, site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COBRO_") and k != "PORT"}
    env.update(
        PYTHONPATH=str(site),
        COBRO_CONFIG_FILE=str(tmp_path / "none.toml"),
        COBRO_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/cobro.db",
        **extra,
    )
    return env


def run_image(site: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*entrypoint(site), *args],
        env=image_env(tmp_path, site, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_wheel_carries_the_migrations(image_site):
    versions = list((image_site / "app" / "db" / "migrations" / "versions").glob("0*.py"))
    assert versions
    assert (image_site / "app" / "db" / "migrations" / "env.py").exists()


def test_entrypoint_help(image_site, tmp_path):
    done = run_image(image_site, tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for command in ("serve", "migrate", "worker"):
        assert command in done.stdout


def test_entrypoint_migrate_as_the_migrate_service_runs_it(image_site, tmp_path, services):
    done = run_image(image_site, tmp_path, *services["migrate"]["command"])
    assert done.returncode == 0, done.stderr
    assert "database is up to date" in done.stderr
    again = run_image(image_site, tmp_path, *services["migrate"]["command"])
    assert again.returncode == 0, again.stderr


@pytest.fixture
def serving(image_site, tmp_path) -> Iterator[tuple[int, dict[str, str]]]:
    """The image's default command, `cobro serve`, on a free port."""
    port = free_port()
    env = image_env(tmp_path, image_site, COBRO_ENV="test", COBRO_HOST="127.0.0.1", PORT=str(port))
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*entrypoint(image_site), *json.loads(instruction(dockerfile_stages()[-1], "CMD")[0])],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "cobro serve did not start"
            time.sleep(0.1)
        yield port, env
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log_path.read_text()


def healthcheck_command() -> list[str]:
    (args,) = instruction(dockerfile_stages()[-1], "HEALTHCHECK")
    return json.loads(args[args.index("CMD ") + 4 :])


def test_image_and_compose_health_checks_pass_on_a_serving_process(serving, services):
    port, env = serving
    image_check = subprocess.run(healthcheck_command(), env=env, timeout=10, check=False)
    assert image_check.returncode == 0
    _cmd, *compose_check = services["api"]["healthcheck"]["test"]
    compose_check = [part.replace(":8000/", f":{port}/") for part in compose_check]
    assert subprocess.run(compose_check, env=env, timeout=10, check=False).returncode == 0


def test_image_health_check_fails_when_nothing_serves(image_site, tmp_path):
    env = image_env(tmp_path, image_site, PORT=str(free_port()))
    done = subprocess.run(
        healthcheck_command(), env=env, capture_output=True, timeout=10, check=False
    )
    assert done.returncode == 1


def test_entrypoint_worker_runs_and_stops_on_sigterm(image_site, tmp_path, services):
    assert run_image(image_site, tmp_path, "migrate").returncode == 0
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*entrypoint(image_site), *services["worker"]["command"]],
            env=image_env(tmp_path, image_site, COBRO_ENV="test"),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "worker running" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log_path.read_text()
