#!/usr/bin/env bash
# Every benchmark, then one report: target/bench/report.md (the table printed
# at the end), report.json (the same with raw numbers, machine and settings),
# latency.png and endpoint.png. Needs the model, ../shared/testdata and the packages of
# scripts/install-deps.sh. Run it on a quiet machine: it takes ~30 minutes.
#   --smoke   a few seconds per step: checks that the script works (CI runs
#             it); its figures mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --smoke ]; then
  export BENCH_SMOKE=1
fi
rm -rf target/bench/parts
for bench in audio_path decode models bus_latency load endpoint interaction session; do
  echo "== $bench"
  ./scripts/cargo bench --quiet --bench "$bench"
done
