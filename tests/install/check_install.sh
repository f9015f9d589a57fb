#!/bin/sh
# Installs the build into a temporary prefix (install), or makes the .deb packages with CPack and unpacks them
# into a temporary root with dpkg-deb -x (deb: nothing is installed on the machine); then checks the layout, builds
# examples/cmake_consumer against it with find_package(Sotto) and a C program with pkg-config, runs them (the C one
# runs a model through the installed library's LibTorch module), and starts the installed aggregator, which must
# find its LibTorch module in the prefix too, and a round of the installed client against it. Leaves nothing behind.
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

# The daemon's systemd unit: installed, starting the packaged binary, and valid to systemd (pointed at the unpacked
# binary and a user that exists here, since nothing is installed on this machine).
unit=$prefix/lib/systemd/system/sotto-aggregator.service
[ -f "$unit" ] || { echo "check_install: the installed tree lacks the systemd unit" >&2; exit 1; }
grep -q '^ExecStart=/usr/bin/sotto-aggregator --config /etc/sotto/aggregator.toml$' "$unit" ||
  { echo "check_install: the unit does not start /usr/bin/sotto-aggregator" >&2; exit 1; }
if command -v systemd-analyze > /dev/null; then
  mkdir -p "$work/unit"
  sed -e "s|/usr/bin/sotto-aggregator|$prefix/bin/sotto-aggregator|" -e 's/^User=sotto$/User=root/' \
      -e 's/^Group=sotto$/Group=root/' "$unit" > "$work/unit/sotto-aggregator.service"
  systemd-analyze verify "$work/unit/sotto-aggregator.service" > "$work/verify.log" 2>&1 ||
    { echo "check_install: systemd-analyze verify refuses the unit:" >&2; cat "$work/verify.log" >&2; exit 1; }
  echo "check_install: systemd-analyze verify accepts the unit"
else
  echo "check_install: systemd-analyze is not here; the unit's syntax is not verified"
fi
if [ "$mode" = deb ]; then
  postinst=$(dpkg-deb -I "$work"/packages/sotto_*.deb postinst)
  echo "$postinst" | grep -q 'adduser --system --group' ||
    { echo "check_install: the sotto package's postinst does not add the service's user" >&2; exit 1; }
  dpkg-deb -f "$work"/packages/sotto_*.deb Depends | grep -q adduser ||
    { echo "check_install: the sotto package does not depend on adduser" >&2; exit 1; }
  echo "check_install: the sotto package adds its user on configure"
fi

cmake -S "$src/examples/cmake_consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release > "$work/consumer-configure.log" || { cat "$work/consumer-configure.log" >&2; exit 1; }
cmake --build "$work/consumer" -j2 > "$work/consumer-build.log" || { cat "$work/consumer-build.log" >&2; exit 1; }
# A client config whose library trains fashion_linear: the installed C library must find lib/sotto/ by itself.
"$src/scripts/make-certs.sh" "$work/pki" 1 > /dev/null 2>&1
cat > "$work/client.toml" <<EOF_CONFIG
[client]
id = "consumer"
[server]
ca_file = "$work/pki/ca.pem"
[auth]
token = "0123456789abcdef"
[model]
architecture = "fashion_linear"
EOF_CONFIG
env -u SOTTO_TORCH_RUNTIME "$work/consumer/consumer_c" "$work/client.toml"
"$work/consumer/consumer_cpp"

PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
cc -o "$work/pkg_config_c" "$src/examples/cmake_consumer/consumer.c" $(pkg-config --cflags --libs sotto-client)
LD_LIBRARY_PATH=$prefix/lib "$work/pkg_config_c"

# The installed aggregator builds its first model through lib/sotto/libsotto_torch_runtime.so.
# The config is the packaged example the unit expects, with this run's port, state and no HTTP endpoint.
sed -e 's/^port = 8443$/port = 0/' -e "s|^dir = \"/var/lib/sotto\".*|dir = \"state\"|" \
    -e 's/^enabled = true                 # \/metrics.*/enabled = false/' \
    "$prefix/share/doc/sotto/examples/aggregator.toml" > "$work/aggregator.toml"
grep -q '^dir = "state"' "$work/aggregator.toml" || { echo "check_install: the example config's state.dir moved" >&2; exit 1; }
"$prefix/bin/sotto-aggregator" --config "$work/aggregator.toml" > "$work/aggregator.log" 2>&1 &
aggregator=$!
for _ in $(seq 300); do
  grep -q "ready:" "$work/aggregator.log" && break
  kill -0 "$aggregator" 2>/dev/null || break
  sleep 0.1
done
grep -q "ready:" "$work/aggregator.log" || { echo "check_install: the installed aggregator did not start:" >&2; cat "$work/aggregator.log" >&2; exit 1; }
echo "check_install: the installed aggregator loaded its LibTorch module and is ready"

# A client's round against the installed daemon, both as installed: one plain round of fashion_linear over mutual
# TLS, the client's LibTorch module found in the prefix too.
kill "$aggregator" 2>/dev/null || true
wait "$aggregator" 2>/dev/null || true
aggregator=
mkdir -p "$work/round"
cat > "$work/round/aggregator.toml" <<EOF_AGGREGATOR
[server]
port = 0
cert_file = "$work/pki/server.pem"
key_file = "$work/pki/server.key"
ca_file = "$work/pki/ca.pem"
[auth]
mode = "mtls"
[rounds]
total = 1
cohort_target = 1
cohort_min = 1
[model]
architecture = "fashion_linear"
[evaluation]
enabled = false
[state]
dir = "$work/round/state"
EOF_AGGREGATOR
"$prefix/bin/sotto-aggregator" --config "$work/round/aggregator.toml" > "$work/round/aggregator.log" 2>&1 &
aggregator=$!
for _ in $(seq 300); do
  [ -s "$work/round/state/port" ] && break
  sleep 0.1
done
[ -s "$work/round/state/port" ] || { echo "check_install: the daemon for the round did not listen:" >&2; cat "$work/round/aggregator.log" >&2; exit 1; }
cat > "$work/round/client.toml" <<EOF_CLIENT
[client]
id = "client-1"
[server]
port = $(cat "$work/round/state/port")
ca_file = "$work/pki/ca.pem"
[auth]
cert_file = "$work/pki/client-1.pem"
key_file = "$work/pki/client-1.key"
[data]
max_examples = 50
[model]
architecture = "fashion_linear"
[consent]
grant = ["training"]
EOF_CLIENT
env -u SOTTO_TORCH_RUNTIME timeout 120 "$prefix/bin/sotto-client" --config "$work/round/client.toml" \
    > "$work/round/client.log" 2>&1 ||
  { echo "check_install: the installed client's round failed:" >&2; cat "$work/round/client.log" "$work/round/aggregator.log" >&2; exit 1; }
grep -q '"status": *"completed"' "$work/round/state/rounds.jsonl" ||
  { echo "check_install: the round did not complete:" >&2; cat "$work/round/state/rounds.jsonl" >&2; exit 1; }
echo "check_install: the installed client took part in a round against the installed daemon"
