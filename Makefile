# streamhub: the two commands a user needs are `make run` and `make test`.
CARGO ?= cargo
CONF ?= configs

.PHONY: run build test fmt-check clippy unit postgres-tools deploy-check bench fmt clean

## run: build and start the server on 0.0.0.0:9000 (data under ./data)
run:
	$(CARGO) run --release --bin streamhub -- -conf $(CONF)

## build: release build of every binary
build:
	$(CARGO) build --release --workspace

## test: every check CI runs: format, clippy with warnings as errors, all tests, deploy files
test: fmt-check clippy unit deploy-check

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: postgres-tools
	$(CARGO) test --workspace

## postgres-tools: the data tests start their own PostgreSQL (never one already running); when
## no initdb is found, install Debian's postgresql package for its binaries
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

postgres-tools:
	@if command -v initdb >/dev/null 2>&1 \
	   || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	   || [ -x "$$(pg_config --bindir 2>/dev/null)/initdb" ]; then :; else \
	  echo "no initdb found: installing Debian's postgresql package"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	fi

## deploy-check: lint and validate deploy/ offline (tools from PyPI into .tools/, pinned)
TOOLS ?= .tools
PYTHON ?= python3
# Where cargo puts its output (CARGO_TARGET_DIR or build.target-dir may move it).
TARGET_DIR = $(shell $(CARGO) metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
STREAMHUB_BIN ?= $(TARGET_DIR)/debug/streamhub

$(TOOLS)/installed: deploy/requirements.txt
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
	touch $@

deploy-check: $(TOOLS)/installed
	$(CARGO) build --bin streamhub
	$(TOOLS)/bin/python deploy/check.py --binary $(STREAMHUB_BIN) --tools $(TOOLS)/bin

## bench: the benchmarks (release build); each prints its figures
bench:
	$(CARGO) bench -p streamhub

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
