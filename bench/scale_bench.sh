#!/usr/bin/env bash
# Scale benchmark of the aggregator (issue 12; method and figures in BENCHMARKS.md): one daemon and N sotto-client
# processes in `--simulate-training` test mode over TLS 1.3 on loopback, plain and with secure aggregation, for
# each N. Per setting it reports round 2's coordination overhead (the round's training phase less the simulated
# training), the daemon's peak RSS and CPU seconds over the whole run, and the floor: 2·N·(model bytes) at the raw
# TLS 1.3 throughput of this machine, measured in the same run with openssl s_server/s_client over loopback.
#   usage: [MODEL=ARCHITECTURE] bench/scale_bench.sh [CLIENT_COUNTS...]     (default: 32 100 300 1000)
# MODEL (default fashion_cnn, the demo's 321 KB model) sets model.architecture: fashion_wide_mlp is the 121 MB
# model of the big-model runs (issue 15), for which the table's transfer rate is the point.
# Needs a build (scripts/build.sh). Prints a Markdown table; raw logs stay in $BENCH_DIR (default /tmp/sotto-scale).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/build/bin
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(32 100 300 1000)
dir=${BENCH_DIR:-/tmp/sotto-scale}
model=${MODEL:-fashion_cnn}
wait_s=1
rm -rf "$dir"
mkdir -p "$dir"
"$root/scripts/make-certs.sh" "$dir/pki" 0 >/dev/null
ulimit -n "$(ulimit -Hn)"

# The floor's throughput: 1 GiB through one TLS 1.3 connection over loopback (Python's ssl module: OpenSSL does
# the record encryption, in 1 MiB writes).
tls_seconds=$(python3 - "$dir/pki" <<'PY'
import socket, ssl, sys, threading, time
pki = sys.argv[1]
server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
server_ctx.load_cert_chain(pki + "/server.pem", pki + "/server.key")
client_ctx = ssl.create_default_context(cafile=pki + "/ca.pem")
client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
listener = socket.create_server(("127.0.0.1", 0))
total, chunk = 1 << 30, b"\0" * (1 << 20)
def serve():
    conn, _ = listener.accept()
    with server_ctx.wrap_socket(conn, server_side=True) as s:
        got = 0
        while got < total:
            got += len(s.recv(1 << 20))
threading.Thread(target=serve, daemon=True).start()
with client_ctx.wrap_socket(socket.create_connection(listener.getsockname()), server_hostname="localhost") as c:
    start = time.perf_counter()
    for _ in range(total // len(chunk)):
        c.sendall(chunk)
    elapsed = time.perf_counter() - start
print(f"{elapsed:.3f}")
PY
)
echo "bench: 1 GiB over TLS 1.3 on loopback in $tls_seconds s" >&2

run_setting() {  # N SECURE
  local n=$1 secure=$2 run="$dir/run-$1-$2"
  mkdir -p "$run"
  {
    printf '[server]\nlisten_address = "127.0.0.1"\nport = 0\ncert_file = "%s"\nkey_file = "%s"\nca_file = "%s"\n' \
      "$dir/pki/server.pem" "$dir/pki/server.key" "$dir/pki/ca.pem"
    printf 'max_connections = %d\nmax_connections_per_address = 0\nmax_unauthenticated_per_address = 0\n' $(( n + 64 ))
    printf '\n[auth]\nmode = "token"\n\n[auth.client_tokens]\n'
    for ((i = 1; i <= n; i++)); do printf '"load-%d" = "scale-bench-token-%08d"\n' "$i" "$i"; done
    printf '\n[rounds]\ntotal = 2\ncohort_target = %d\ncohort_min = %d\ncheckin_window_s = 300\n' "$n" "$n"
    printf '\n[secure_aggregation]\nenabled = %s\nstep_deadline_s = 300\n' "$secure"
    printf '\n[model]\narchitecture = "%s"\n' "$model"
    printf '\n[evaluation]\nenabled = false\n\n[state]\ndir = "%s/state"\n\n[log]\nlevel = "warn"\n' "$run"
  } > "$run/aggregator.toml"
  /usr/bin/time -f '%M %U %S' -o "$run/aggregator.time" "$bin/sotto-aggregator" --config "$run/aggregator.toml" \
    > "$run/aggregator.log" 2>&1 &
  local agg=$!
  for _ in $(seq 100); do [ -f "$run/state/port" ] && break; sleep 0.1; done
  local port
  port=$(cat "$run/state/port")
  local pids=()
  for ((i = 1; i <= n; i++)); do
    printf '[client]\nid = "load-%d"\n\n[server]\nhost = "127.0.0.1"\nport = %s\nserver_name = "localhost"\nca_file = "%s"\n' \
      "$i" "$port" "$dir/pki/ca.pem" > "$run/client-$i.toml"
    printf '\n[auth]\ntoken = "scale-bench-token-%08d"\n\n[connection]\nconnect_timeout_s = 60\ngive_up_after_s = 300\n' \
      "$i" >> "$run/client-$i.toml"
    printf '\n[consent]\ngrant = ["training"]\n\n[log]\nlevel = "warn"\n' >> "$run/client-$i.toml"
    /usr/bin/time -f '%M' -o "$run/client-$i.time" \
      "$bin/sotto-client" --config "$run/client-$i.toml" --simulate-training "$wait_s" > "$run/client-$i.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=$(( failed + 1 )); done
  wait "$agg" || { echo "bench: the aggregator failed for $n clients (secure $secure); see $run" >&2; exit 1; }
  [ "$failed" -eq 0 ] || { echo "bench: $failed clients failed for $n (secure $secure); see $run" >&2; exit 1; }
}

for n in "${counts[@]}"; do
  for secure in false true; do
    echo "bench: $n clients, secure aggregation $secure" >&2
    run_setting "$n" "$secure"
  done
done

python3 - "$dir" "$tls_seconds" "$wait_s" "${counts[@]}" <<'PY'
import json, os, sys
d, tls_seconds, wait_s, counts = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
rate = 2**30 / tls_seconds
print(f"TLS 1.3 over loopback: {rate / 1e6:.0f} MB/s one way\n")
print("| clients | secure | coordination s (round 2) | floor s: 2·n·model bytes at TLS rate | coordination / floor | "
      "transfer MB/s (round 2) | transfer / TLS rate | aggregator peak RSS MiB | aggregator RSS / model | "
      "client peak RSS MiB (max) | aggregator CPU s (whole run) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for n in counts:
    for secure in ("false", "true"):
        run = os.path.join(d, f"run-{n}-{secure}")
        rows = [json.loads(l) for l in open(os.path.join(run, "state", "rounds.jsonl"))]
        r = rows[-1]
        coordination = r["seconds"]["training"] - wait_s
        floor = (r["bytes_in"] + r["bytes_out"]) / rate
        rss, user, sys_s = open(os.path.join(run, "aggregator.time")).read().split()
        model_bytes = r["bytes_out"] / r["cohort"]  # what the daemon sent each client: the model
        clients = [int(open(os.path.join(run, f"client-{i}.time")).read().split()[-1]) for i in range(1, int(n) + 1)]
        moved = (r["bytes_in"] + r["bytes_out"]) / coordination
        print(f"| {n} | {'yes' if secure == 'true' else 'no'} | {coordination:.3f} | {floor:.3f} | "
              f"{coordination / floor:.2f} | {moved / 1e6:.0f} | {moved / rate:.2f} | {int(rss) / 1024:.0f} | "
              f"{int(rss) * 1024 / model_bytes:.1f} | {max(clients) / 1024:.0f} | {float(user) + float(sys_s):.1f} |")
PY
