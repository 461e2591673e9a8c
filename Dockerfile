# syntax=docker/dockerfile:1
# One image for every role: `cobro serve` (API, the default), `cobro worker`, `cobro migrate`.
# compose.yaml runs all three; README.md "Deploy" says what to change for production.

# --- build: Cobro and its dependencies into a virtualenv -------------------------------
# Every dependency ships manylinux wheels for CPython 3.11 (amd64 and arm64), so nothing
# is compiled; were a compiler ever needed, it would be installed in this stage only.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/cobro
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY resolvers ./resolvers
COPY providers ./providers
# A regular (not editable) install: the venv holds everything, /src is left behind.
# pip goes too: nothing installs or builds packages at run time.
RUN /opt/cobro/bin/pip install --no-cache-dir . \
    && /opt/cobro/bin/pip uninstall --yes pip

# --- run: the slim base, the venv, a user without privileges ---------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/cobro/bin:$PATH \
    COBRO_HOST=0.0.0.0

# A fixed numeric id, so that orchestrators can check runAsNonRoot and volumes can be
# chowned to it. var/ is where the default SQLite database lives (single-container use).
RUN groupadd --system --gid 10001 cobro \
    && useradd --system --uid 10001 --gid cobro --home-dir /srv/cobro --shell /usr/sbin/nologin cobro \
    && mkdir -p /srv/cobro/var \
    && chown cobro:cobro /srv/cobro/var

COPY --from=build /opt/cobro /opt/cobro
WORKDIR /srv/cobro
USER 10001:10001

EXPOSE 8000
# Liveness of `cobro serve`. The worker and migrate roles serve no HTTP: compose.yaml
# turns this off for them.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; p = os.environ.get('PORT') or os.environ.get('COBRO_PORT') or '8000'; u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=2)"]
ENTRYPOINT ["cobro"]
CMD ["serve"]
