#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, then runs a real federated training on this
# machine — one sotto-aggregator and N sotto-client processes talking TLS 1.3 over 127.0.0.1 — and prints the
# global model's test accuracy on the 10,000 Fashion-MNIST test images after every round.
#   environment: DEMO_CLIENTS (default 8), DEMO_ROUNDS (default 5), DEMO_DIR (default ./demo-run),
#                DEMO_PARTITION (iid or dirichlet, default iid), DEMO_SKIP_BUILD=1 to reuse build/,
#                DEMO_MEASURE_RSS=1 to record each process's peak RSS in logs/<name>.rss (bench/ uses it),
#                DEMO_SECAGG=0 to run without secure aggregation (on by default), and with it distributed
#                differential privacy: DEMO_NOISE (the noise multiplier, default 0.01), DEMO_CLIP (the clip norm,
#                default 10), DEMO_BITS (bits per coordinate, default 16); DEMO_MODEL (model.architecture,
#                default fashion_cnn) and DEMO_MAX_EXAMPLES (each client's data.max_examples, default 0: all).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clients=${DEMO_CLIENTS:-8}
rounds=${DEMO_ROUNDS:-5}
partition=${DEMO_PARTITION:-iid}
secagg=${DEMO_SECAGG:-1}
noise=${DEMO_NOISE:-0.01}
clip=${DEMO_CLIP:-10}
bits=${DEMO_BITS:-16}
model=${DEMO_MODEL:-fashion_cnn}
max_examples=${DEMO_MAX_EXAMPLES:-0}
run=${DEMO_DIR:-$root/demo-run}

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
  "$root/scripts/install-deps.sh"
  "$root/scripts/build.sh"
fi
bin=$root/build/bin

rm -rf "$run"
mkdir -p "$run/logs"
"$root/scripts/make-certs.sh" "$run/pki" "$clients"

cat > "$run/aggregator.toml" <<TOML
[server]
listen_address = "127.0.0.1"
port = 0
cert_file = "pki/server.pem"
key_file = "pki/server.key"
ca_file = "pki/ca.pem"
# Every demo client connects from 127.0.0.1: lift the per-address caps meant for the internet.
max_connections_per_address = 0
max_unauthenticated_per_address = 0

[auth]
mode = "mtls"

[rounds]
total = $rounds
cohort_target = $clients
cohort_min = $(( clients > 1 ? clients * 3 / 4 : 1 ))
checkin_window_s = 60
training_deadline_s = 600

[plan]
epochs = 1
batch_size = 32
optimizer = "sgd"
learning_rate = 0.05
momentum = 0.9

[secure_aggregation]
enabled = $([ "$secagg" = 1 ] && echo true || echo false)
bits = $bits

[privacy]
clip_norm = $clip
$([ "$secagg" = 1 ] && printf 'mode = "distributed"\nnoise_multiplier = %s\ndelta = 1e-5\n' "$noise")

[model]
architecture = "$model"

[evaluation]
enabled = true

[state]
dir = "state"
TOML

pids=()
cleanup() {
  for pid in "${pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
launch() {  # name, command...: starts a process in the background with its log (and peak RSS if asked)
  local name=$1
  shift
  if [ "${DEMO_MEASURE_RSS:-0}" = 1 ]; then
    /usr/bin/time -f '%M' -o "logs/$name.rss" "$@" > "logs/$name.log" 2>&1 &
  else
    "$@" > "logs/$name.log" 2>&1 &
  fi
}
trap cleanup EXIT

start=$(date +%s.%N)
cd "$run"
date +%s.%N > logs/launched_at
launch aggregator "$bin/sotto-aggregator" --config aggregator.toml
aggregator=$!
pids+=("$aggregator")
for _ in $(seq 100); do [ -s state/port ] && break; sleep 0.1; done
[ -s state/port ] || { echo "demo: the aggregator did not start; see $run/logs/aggregator.log" >&2; cat logs/aggregator.log >&2; exit 1; }
port=$(cat state/port)

client_pids=()
for ((i = 1; i <= clients; i++)); do
  cat > "client-$i.toml" <<TOML
[client]
id = "client-$i"

[server]
host = "127.0.0.1"
port = $port
server_name = "localhost"
ca_file = "pki/ca.pem"

[auth]
cert_file = "pki/client-$i.pem"
key_file = "pki/client-$i.key"

[data]
num_shards = $clients
shard_index = $(( i - 1 ))
partition = "$partition"
max_examples = $max_examples

[model]
architecture = "$model"

[state]
dir = "client-$i-state"
key_file = "client-$i-state.key"

# The person's opt-in, recorded for the demo; an app records it with set_consent, a person with
# "sotto-client consent grant". Without it the client sends nothing.
[consent]
grant = ["training"]
TOML
  [ -f "client-$i-state.key" ] || "$bin/sotto-client" keygen --key-file "client-$i-state.key" >/dev/null
  launch "client-$i" "$bin/sotto-client" --config "client-$i.toml"
  client_pids+=($!)
  pids+=($!)
done

echo "demo: aggregator on 127.0.0.1:$port, $clients clients, $rounds rounds, secure aggregation $([ "$secagg" = 1 ] && echo "on with distributed DP (noise multiplier $noise, clip norm $clip, $bits bits)" || echo off) (logs in $run/logs)"
printf '%-6s %-10s %-14s %-10s %-9s %-8s %-14s %s\n' round clients test_accuracy test_loss train_loss seconds epsilon delta
shown=0
print_new_rounds() {
  [ -f state/rounds.jsonl ] || return 0
  local n
  n=$(wc -l < state/rounds.jsonl)
  while [ "$shown" -lt "$n" ]; do
    shown=$(( shown + 1 ))
    sed -n "${shown}p" state/rounds.jsonl | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
acc = "%.4f" % r["test_accuracy"] if "test_accuracy" in r else r["status"]
loss = "%.4f" % r["test_loss"] if "test_loss" in r else "-"
train = "%.4f" % r["mean_train_loss"] if "mean_train_loss" in r else "-"  # withheld under DP
p = r.get("privacy")
eps = "%.4g" % p["epsilon"] if p else "(no DP)"
delta = "%.0e" % p["delta"] if p else "-"
print("%-6d %-10s %-14s %-10s %-9s %-8.1f %-14s %s" % (r["round"], "%d/%d" % (r["survivors"], r["cohort"]), acc, loss,
      train, r["seconds"]["checkin"] + r["seconds"]["training"], eps, delta))'
  done
}
while kill -0 "$aggregator" 2>/dev/null; do
  print_new_rounds
  sleep 0.5
done
print_new_rounds
status=0
wait "$aggregator" || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo: the aggregator exited with status $status; see $run/logs/aggregator.log" >&2
  tail -20 logs/aggregator.log >&2
  exit 1
fi
failed=0
for ((i = 0; i < clients; i++)); do
  s=0
  wait "${client_pids[$i]}" || s=$?
  if [ "$s" -ne 0 ]; then echo "demo: client-$(( i + 1 )) exited with status $s (logs/client-$(( i + 1 )).log)" >&2; failed=1; fi
done
pids=()
elapsed=$(python3 -c "import time; print('%.1f' % (time.time() - $start))")
final=$(tail -n 1 state/rounds.jsonl | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("%.2f%%" % (100*r.get("test_accuracy", 0)))')
echo "demo: $rounds rounds in $elapsed s; final test accuracy $final on 10,000 test images"
exit "$failed"
