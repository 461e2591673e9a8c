# The whole set-up on a fresh machine is `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# One pytest worker per core and one more (pytest-xdist): tests spend part of their
# time waiting on processes they start and on sockets, and a spare worker fills it
# (2 cores: 5:24 with two workers, 4:47 with three and work stealing, which hands a
# worker left idle the queue of a busy one; on the slower Xeon VM of 2026-12-02,
# 5:00 with three and 5:27 with four). `make test PYTEST_ARGS=` runs in one process.
PYTEST_ARGS ?= -n $(shell echo $$(( $$(nproc) + 1 ))) --dist worksteal

.PHONY: run test install system-deps bench-deps schema lint clean bench

run: $(STAMP)
	$(BIN)/cobro serve

test: $(STAMP) system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(STAMP)

# uv installs what pip would (the same versions: pip freeze shows no difference) in
# 10-20 s instead of pip's 60; pip does it if uv cannot.
COMMA := ,
INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[$(1)]' \
	  || $(BIN)/python -m pip install --quiet -e '.[$(1)]'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet 'uv>=0.5,<1' || true
	$(call INSTALL,dev)
	touch $(STAMP)

# Debian packages the tests start themselves: a private redis-server and a throw-away
# PostgreSQL cluster per run (tests/support/postgres.py), never the system's own;
# chromium, which tests/browser/ drive through Playwright (never `playwright install`);
# and nginx, whose `nginx -t` checks deploy/nginx.conf (tests/test_deploy.py).
system-deps:
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  && test -x /usr/bin/chromium && test -x /usr/sbin/nginx || { \
	  echo "installing redis-server, postgresql, chromium and nginx"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq redis-server postgresql chromium nginx-light >/dev/null; }

# The benchmark suite (bench/run.py): real servers on loopback, wrk and a WebSocket
# client in their own processes. `make bench QUICK=1` runs in about 2.5 minutes.
bench: $(BENCH_STAMP) bench-deps
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

$(BENCH_STAMP): $(STAMP)
	$(call INSTALL,dev$(COMMA)bench)
	touch $(BENCH_STAMP)

bench-deps: system-deps
	@command -v wrk >/dev/null || { \
	  echo "installing wrk"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk >/dev/null; }

schema: $(STAMP)
	$(BIN)/cobro export-schema --output schema.graphql

# Style, formatting, types ([tool.mypy] in pyproject.toml) and the Dockerfile.
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) var .pytest_cache
