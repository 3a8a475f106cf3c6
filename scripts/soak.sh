#!/usr/bin/env bash
# The long checks that do not belong in CI: one hour of session audio
# fast-forwarded through sottod (RSS after five minutes vs at the end), then
# each fuzz target for ten minutes. Prints the figures; exits non-zero on the
# first failure. SOAK_SECONDS and FUZZ_SECONDS shorten it.
set -euo pipefail
cd "$(dirname "$0")/.."
soak=${SOAK_SECONDS:-3600}
fuzz=${FUZZ_SECONDS:-600}
log=target/soak
mkdir -p "$log"
echo "soak: ${soak} s of audio, --no-pace (log: $log/memory.txt)"
SOTTO_SOAK_SECONDS=$soak ./scripts/cargo test --release --test integration soak -- --nocapture 2>&1 \
  | tee "$log/memory.txt" | grep -E '^RSS|^test result'
echo "fuzz: ${fuzz} s per target (log: $log/fuzz.txt)"
SOTTO_FUZZ_SECONDS=$fuzz ./scripts/cargo test --release --test fuzz -- --nocapture --test-threads=1 2>&1 \
  | tee "$log/fuzz.txt" | grep -E 'inputs in|^test result'
