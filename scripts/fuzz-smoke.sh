#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 into the given directory and runs their short smoke tests.
# ctest in the main build calls this, so `scripts/test.sh` covers the fuzzers too.
#   usage: scripts/fuzz-smoke.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:?usage: fuzz-smoke.sh BUILD_DIR}
command -v clang++-14 >/dev/null || { echo "fuzz-smoke: clang++-14 is missing; run scripts/install-deps.sh" >&2; exit 1; }
CXX=clang++-14 cmake -S "$root" -B "$dir" -DSOTTO_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j "${SOTTO_JOBS:-$(nproc)}"
ctest --test-dir "$dir" --output-on-failure
