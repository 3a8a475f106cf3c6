# sotto — the README's commands. Each target installs what it needs first
# (system packages, a Rust toolchain when none is new enough, the model),
# except install and uninstall, which only copy and remove files.
#   make        set up and build: binaries, man pages, completions and the default model
#   make run    set up everything, then run sottod on the default microphone
#   make test   set up everything, lint (fmt, clippy, doc), then run every test (and a seconds-long smoke run of the benchmarks)
#   make demo   no microphone? a virtual one speaks three sentences into sottod
#   make deb    the Debian package (target/debian/*.deb)
#   make bench  every benchmark and the report (target/bench/report.md, .json, latency.png, endpoint.png)
#   make soak   one hour of audio through sottod (memory), ten minutes per fuzz target

# The first Rust toolchain new enough for Cargo.toml's rust-version.
CARGO ?= ./scripts/cargo
PREFIX ?= /usr/local
DESTDIR ?=
# Where install takes the binaries from.
RELEASE ?= target/release
SOTTOD = target/release/sottod
SOTTO_ARGS ?=

.PHONY: all setup deps build env-file model test-setup run test lint demo bench soak clean

all: setup

deps:
	./scripts/install-deps.sh

# The binaries and the Rust example client, then the man pages and
# completions made from their flags.
build: deps
	$(CARGO) build --release --bins --examples -p sotto -p sotto-client -p sotto-gendocs
	target/release/sotto-gendocs target/docs

# systemd/sotto.default again, after a flag changed (a unit test compares them).
env-file: build
	target/release/sotto-gendocs --env-file systemd/sotto.default

model: build
	./models/fetch.sh

setup: deps build model

run: setup
	$(SOTTOD) $(SOTTO_ARGS)

# The tests also convert the model's CTranslate2 original again, use the
# multilingual base model, run the daemon as the service's user and install
# the Debian package.
test-setup: setup
	./models/fetch.sh --source
	./models/fetch.sh base
	./scripts/install-deps.sh --test-user
	$(MAKE) --no-print-directory deb

test: test-setup lint
	$(CARGO) test --release --workspace --lib --bins --tests -- --test-threads=1
	./scripts/bench.sh --smoke

demo: setup
	SOTTO_ARGS="$(SOTTO_ARGS)" ./scripts/demo.sh

bench: setup
	./models/fetch.sh base
	./scripts/bench.sh

soak: setup
	./scripts/soak.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --workspace --no-deps

clean:
	$(CARGO) clean

# Installation. PREFIX and DESTDIR as usual; the D-Bus system policy goes to
# SYSCONFDIR (the system bus does not read /usr/local).
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
DOCDIR ?= $(DATADIR)/doc/sotto
SYSCONFDIR ?= /etc
SYSTEMD_SYSTEM_DIR ?= $(PREFIX)/lib/systemd/system
SYSTEMD_USER_DIR ?= $(PREFIX)/lib/systemd/user
DBUS_POLICY_DIR ?= $(SYSCONFDIR)/dbus-1/system.d
DBUS_SESSION_DIR ?= $(DATADIR)/dbus-1/services
DBUS_INTERFACE_DIR ?= $(DATADIR)/dbus-1/interfaces
MANDIR ?= $(DATADIR)/man
BASH_COMPLETION_DIR ?= $(DATADIR)/bash-completion/completions
ZSH_COMPLETION_DIR ?= $(DATADIR)/zsh/vendor-completions
FISH_COMPLETION_DIR ?= $(DATADIR)/fish/vendor_completions.d
ENV_FILE ?= $(SYSCONFDIR)/default/sotto
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@ENV_FILE@|$(ENV_FILE)|g'
PROGRAMS = sottod sotto sotto-convert

INSTALLED = \
	$(BINDIR)/sottod $(BINDIR)/sotto $(BINDIR)/sotto-convert \
	$(DATADIR)/sotto/models/ggml-tiny.en.bin \
	$(SYSTEMD_SYSTEM_DIR)/sotto.service $(SYSTEMD_USER_DIR)/sotto.service \
	$(DBUS_POLICY_DIR)/org.sotto.Sotto1.conf $(DBUS_SESSION_DIR)/org.sotto.Sotto1.service \
	$(DBUS_INTERFACE_DIR)/org.sotto.Sotto1.xml $(DOCDIR)/README.md \
	$(foreach p,$(PROGRAMS),$(MANDIR)/man1/$(p).1 $(BASH_COMPLETION_DIR)/$(p) \
	  $(ZSH_COMPLETION_DIR)/_$(p) $(FISH_COMPLETION_DIR)/$(p).fish)

# The Debian package, target/debian/sotto_VERSION-1_ARCH.deb: what install
# stages under /usr and /etc, man pages compressed, packed by cargo-deb
# (from crates.io, built once into target/tools).
CARGO_DEB_VERSION = 3.8.0
DEB_ROOT = target/deb-root
.PHONY: deb
deb: setup
	@[ -x target/tools/bin/cargo-deb ] || $(CARGO) install --quiet --locked --root target/tools cargo-deb@$(CARGO_DEB_VERSION)
	rm -rf $(DEB_ROOT) target/debian
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr
	gzip -9n $(DEB_ROOT)/usr/share/man/man1/*.1
	PATH="$(CURDIR)/target/tools/bin:$$PATH" $(CARGO) deb --no-build --no-strip --fast --package sotto

.PHONY: install install-files uninstall
# Copies what `make` built, stripped; builds nothing and runs no apt, cargo
# or network, so it works under sudo's PATH and with DESTDIR in a chroot.
# As root without DESTDIR it also creates the service's system user.
install:
	@for f in $(RELEASE)/sottod $(RELEASE)/sotto $(RELEASE)/sotto-convert models/ggml-tiny.en.bin target/docs/man/man1/sottod.1; do \
	  [ -f "$$f" ] || { echo "install: $$f is missing: run \`make\` first (as yourself; it builds and fetches the model), then install" >&2; exit 1; }; \
	done
	install -Dm755 -s $(RELEASE)/sottod $(DESTDIR)$(BINDIR)/sottod
	install -Dm755 -s $(RELEASE)/sotto $(DESTDIR)$(BINDIR)/sotto
	install -Dm755 -s $(RELEASE)/sotto-convert $(DESTDIR)$(BINDIR)/sotto-convert
	install -Dm644 models/ggml-tiny.en.bin $(DESTDIR)$(DATADIR)/sotto/models/ggml-tiny.en.bin
	install -d $(DESTDIR)$(SYSTEMD_SYSTEM_DIR) $(DESTDIR)$(SYSTEMD_USER_DIR) $(DESTDIR)$(DBUS_SESSION_DIR)
	$(SUBST) systemd/sotto.system.service > $(DESTDIR)$(SYSTEMD_SYSTEM_DIR)/sotto.service
	$(SUBST) systemd/sotto.user.service > $(DESTDIR)$(SYSTEMD_USER_DIR)/sotto.service
	$(SUBST) systemd/org.sotto.Sotto1.service > $(DESTDIR)$(DBUS_SESSION_DIR)/org.sotto.Sotto1.service
	install -Dm644 systemd/org.sotto.Sotto1.conf $(DESTDIR)$(DBUS_POLICY_DIR)/org.sotto.Sotto1.conf
	install -Dm644 src/org.sotto.Sotto1.xml $(DESTDIR)$(DBUS_INTERFACE_DIR)/org.sotto.Sotto1.xml
	install -Dm644 README.md $(DESTDIR)$(DOCDIR)/README.md
	for p in $(PROGRAMS); do \
	  install -Dm644 target/docs/man/man1/$$p.1 $(DESTDIR)$(MANDIR)/man1/$$p.1 && \
	  install -Dm644 target/docs/completions/bash/$$p $(DESTDIR)$(BASH_COMPLETION_DIR)/$$p && \
	  install -Dm644 target/docs/completions/zsh/_$$p $(DESTDIR)$(ZSH_COMPLETION_DIR)/_$$p && \
	  install -Dm644 target/docs/completions/fish/$$p.fish $(DESTDIR)$(FISH_COMPLETION_DIR)/$$p.fish || exit 1; \
	done
	@# The settings file is the admin's once installed: never overwritten.
	@if [ -e $(DESTDIR)$(ENV_FILE) ]; then \
	  echo "install: keeping $(DESTDIR)$(ENV_FILE) (the shipped one is systemd/sotto.default)"; \
	else install -Dm644 systemd/sotto.default $(DESTDIR)$(ENV_FILE); fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	  echo "install: creating the system user and group sotto (if missing)"; \
	  getent group sotto >/dev/null || groupadd --system sotto; \
	  getent passwd sotto >/dev/null || useradd --system --gid sotto --groups audio \
	    --home-dir /nonexistent --shell /usr/sbin/nologin sotto; \
	fi

# The former name of install.
install-files: install

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@# The settings file goes only when nobody changed it.
	@if cmp -s systemd/sotto.default $(DESTDIR)$(ENV_FILE); then rm -f $(DESTDIR)$(ENV_FILE); \
	elif [ -e $(DESTDIR)$(ENV_FILE) ]; then echo "uninstall: keeping $(DESTDIR)$(ENV_FILE) (changed)"; fi
	-rmdir $(DESTDIR)$(DATADIR)/sotto/models $(DESTDIR)$(DATADIR)/sotto $(DESTDIR)$(DOCDIR) 2>/dev/null
