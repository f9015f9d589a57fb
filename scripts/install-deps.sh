#!/usr/bin/env bash
# Installs every Debian 12 package Sotto needs to build, test and run its demo. Idempotent: packages already
# present are skipped, and apt-get runs only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates openssl
  libtorch-dev
  libboost1.81-dev
  libssl-dev
  libprotobuf-dev protobuf-compiler
  catch2
  libcli11-dev libspdlog-dev libtomlplusplus-dev nlohmann-json3-dev
  libbenchmark-dev zlib1g-dev
  dataset-fashion-mnist
  clang-14 libclang-rt-14-dev
  procps time python3
  # sotto-sim draws accuracy.png / loss.png and simulations/plot_compare.sh compares runs with gnuplot.
  gnuplot-nox
  # Debian's LibTorch calls the system BLAS; the single-threaded OpenBLAS trains ~1.6x faster than the
  # reference BLAS, and one thread per process is what many client processes on few cores want.
  libopenblas0-serial
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or with sudo) so apt-get can install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
