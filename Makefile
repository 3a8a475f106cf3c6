# sotto — the README's commands. Each target installs what it needs first.
#   make run    set up everything, then run sottod on the default microphone
#   make test   set up everything, then run every test
#   make bench  the audio path benchmark (release build)

CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
SOTTOD = target/release/sottod
SOTTO_ARGS ?=

.PHONY: all setup deps build model run test lint bench clean

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
	$(CARGO) test --release --all-targets -- --test-threads=1

bench: build
	$(CARGO) bench --bench audio_path

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --no-deps

clean:
	$(CARGO) clean
