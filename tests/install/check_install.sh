#!/bin/sh
# Installs the build into a temporary prefix (install), or makes the .deb packages with CPack and unpacks them
# into a temporary root with dpkg-deb -x (deb: nothing is installed on the machine); then checks the layout, builds
# examples/cmake_consumer against it with find_package(Sotto) and a C program with pkg-config, runs them, and starts
# the installed aggregator, which must find its LibTorch module in the prefix. Leaves nothing behind.
#   check_install.sh install|deb BUILD_DIR SOURCE_DIR
set -eu
mode=$1
build=$2
src=$3
work=$(mktemp -d)
aggregator=
cleanup() {
  [ -n "$aggregator" ] && kill "$aggregator" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ "$mode" = deb ]; then
  (cd "$build" && cpack --config CPackConfig.cmake -B "$work/packages") > "$work/cpack.log" ||
    { cat "$work/cpack.log" >&2; exit 1; }
  for deb in "$work"/packages/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
    echo "check_install: unpacked $(basename "$deb")"
  done
  prefix=$work/root/usr
else
  prefix=$work/prefix
  cmake --install "$build" --prefix "$prefix" > "$work/install.log"
fi
for f in bin/sotto-aggregator bin/sotto-client bin/sotto-dp bin/sotto-sim lib/libsotto_client.so.0 \
         lib/libsotto_client.so lib/sotto/libsotto_torch_runtime.so include/sotto/sotto_client.h \
         include/sotto/client/client.h include/sotto/common/round/messages.h include/sotto/sotto/v1/sotto.pb.h \
         lib/cmake/Sotto/SottoConfig.cmake lib/cmake/Sotto/SottoTargets.cmake lib/pkgconfig/sotto-client.pc; do
  [ -e "$prefix/$f" ] || { echo "check_install: the installed tree lacks $f" >&2; exit 1; }
done
echo "check_install: layout ok"

cmake -S "$src/examples/cmake_consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release > "$work/consumer-configure.log" || { cat "$work/consumer-configure.log" >&2; exit 1; }
cmake --build "$work/consumer" -j2 > "$work/consumer-build.log" || { cat "$work/consumer-build.log" >&2; exit 1; }
"$work/consumer/consumer_c"
"$work/consumer/consumer_cpp"

PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
cc -o "$work/pkg_config_c" "$src/examples/cmake_consumer/consumer.c" $(pkg-config --cflags --libs sotto-client)
LD_LIBRARY_PATH=$prefix/lib "$work/pkg_config_c"

# The installed aggregator builds its first model through lib/sotto/libsotto_torch_runtime.so.
"$src/scripts/make-certs.sh" "$work/pki" 1 > /dev/null 2>&1
cat > "$work/aggregator.toml" <<TOML
[server]
port = 0
cert_file = "pki/server.pem"
key_file = "pki/server.key"
ca_file = "pki/ca.pem"
[state]
dir = "state"
TOML
"$prefix/bin/sotto-aggregator" --config "$work/aggregator.toml" > "$work/aggregator.log" 2>&1 &
aggregator=$!
for _ in $(seq 300); do
  grep -q "ready:" "$work/aggregator.log" && break
  kill -0 "$aggregator" 2>/dev/null || break
  sleep 0.1
done
grep -q "ready:" "$work/aggregator.log" || { echo "check_install: the installed aggregator did not start:" >&2; cat "$work/aggregator.log" >&2; exit 1; }
echo "check_install: the installed aggregator loaded its LibTorch module and is ready"
