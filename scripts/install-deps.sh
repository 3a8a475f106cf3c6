#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages sotto needs to build, run and test.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

packages=(
  # build: whisper.cpp (cmake, a C++ compiler), bindgen (libclang), cpal (ALSA)
  build-essential cmake clang libclang-dev pkg-config libasound2-dev
  # model download client (pip) for the default model
  python3 python3-pip
  # tests and demo: virtual microphone, speech synthesis, real D-Bus clients
  pulseaudio pulseaudio-utils alsa-utils libasound2-plugins espeak-ng sox
  dbus dbus-bin libglib2.0-bin systemd procps util-linux
  # benchmark report: the plot's font
  fonts-dejavu-core
)

# The service's system user and group (the D-Bus policy names them); the
# policy tests run the daemon as this user.
ensure_user() {
  getent group sotto >/dev/null || $sudo groupadd --system sotto
  getent passwd sotto >/dev/null || $sudo useradd --system --gid sotto --groups audio \
    --home-dir /nonexistent --shell /usr/sbin/nologin sotto
}

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  if [ -z "$sudo" ] || command -v sudo >/dev/null; then ensure_user; fi
  exit 0
fi

if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
  echo "install-deps: run as root or install sudo to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
ensure_user
