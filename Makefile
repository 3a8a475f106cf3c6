# sotto — the README's commands. Each target installs what it needs first.
#   make run    set up everything, then run sottod on the default microphone
#   make test   set up everything, then run every test
#   make demo   no microphone? a virtual one speaks three sentences into sottod
#   make bench  the benchmarks (audio path, signal delivery, decode)

CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
SOTTOD = target/release/sottod
SOTTO_ARGS ?=

.PHONY: all setup deps build model run test lint demo bench clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	$(CARGO) build --release --bins

model: build
	./models/fetch.sh

setup: deps build model

run: setup
	$(SOTTOD) $(SOTTO_ARGS)

test: setup
	$(CARGO) test --release --lib --bins --tests -- --test-threads=1

demo: setup
	./scripts/demo.sh

bench: model
	$(CARGO) bench --bench audio_path
	$(CARGO) bench --bench bus_latency
	$(CARGO) bench --bench decode

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --no-deps

clean:
	$(CARGO) clean
