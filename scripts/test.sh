#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, and runs every test with ctest —
# unit, LibTorch, integration (real sotto-aggregator and sotto-client processes over TLS on loopback) and the
# fuzzer smoke run. Exits non-zero if anything fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
start=$(date +%s)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
echo "test.sh: build finished after $(( $(date +%s) - start )) s"
ctest --test-dir "$root/build" --output-on-failure -j "${SOTTO_JOBS:-$(nproc)}" --timeout 900
