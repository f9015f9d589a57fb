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
  # The PLD accountant composes privacy-loss distributions by FFT convolution.
  libfftw3-dev
  # The aggregator's /metrics (prometheus-cpp's core library), and a real Prometheus server that scrapes it in the
  # tests.
  prometheus-cpp-dev prometheus
  # Headless Chromium loads the aggregator's /status page in the tests.
  chromium
  dataset-fashion-mnist
  clang-14 libclang-rt-14-dev
  procps time python3
  # The accountant's tests check it against an independent numerical integration with mpmath.
  python3-mpmath
  # PyTorch (1.13, as LibTorch) exports the TorchScript models of models/ in the tests, and reads back models
  # trained through Sotto.
  python3-torch
  # sotto-sim draws accuracy.png / loss.png and simulations/plot_compare.sh compares runs with gnuplot.
  gnuplot-nox
  # Debian's LibTorch calls the system BLAS. OpenBLAS trains ~1.6x faster than the reference BLAS. It must be the
  # pthread build: Debian's libopenblas0-serial is built without locking, and sotto-sim's training threads calling
  # it at once get corrupted, run-to-run different results (OpenBLAS issue #2126). common/ml sets its thread count
  # to LibTorch's (1 per client process).
  libopenblas0-pthread
  # sotto-sim's scale-out over MPI ranks.
  libopenmpi-dev openmpi-bin
)

# The BLAS alternatives must point at the pthread OpenBLAS even where the serial build is also installed.
use_pthread_openblas() {
  local arch_dir=/usr/lib/x86_64-linux-gnu
  for name in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    local target="$arch_dir/openblas-pthread/$name"
    local link="$name-x86_64-linux-gnu"
    [ -e "$target" ] || continue
    if [ "$(readlink -f "$arch_dir/$name")" != "$(readlink -f "$target")" ]; then
      if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: $arch_dir/$name is not the pthread OpenBLAS; as root run:" \
          "update-alternatives --set $link $target" >&2
        exit 1
      fi
      update-alternatives --quiet --set "$link" "$target"
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  use_pthread_openblas
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
use_pthread_openblas
