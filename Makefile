# streamhub: the two commands a user needs are `make run` and `make test`.
CARGO ?= cargo
CONF ?= configs

.PHONY: run build test fmt-check clippy unit bench fmt clean

## run: build and start the server on 0.0.0.0:9000 (data under ./data)
run:
	$(CARGO) run --release --bin streamhub -- -conf $(CONF)

## build: release build of every binary
build:
	$(CARGO) build --release --workspace

## test: every check CI runs: format, clippy with warnings as errors, all tests
test: fmt-check clippy unit

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

## bench: the benchmarks (release build); each prints its figures
bench:
	$(CARGO) bench -p streamhub

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
