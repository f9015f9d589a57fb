#!/usr/bin/env bash
# Whole-system benchmark of the demo's task over TLS on loopback (method in BENCHMARKS.md):
# for 8 and 32 clients, per-round coordination overhead and averaging time, start-up time, and peak RSS of the
# aggregator and of a client next to a bare LibTorch process that trains the same CNN on the same shard.
#   usage: bench/round_bench.sh [ROUNDS] [CLIENT_COUNTS...]     (defaults: 3 rounds; 8 and 32 clients)
# Needs a build (scripts/build.sh). Prints a Markdown table; raw logs stay in $BENCH_DIR (default /tmp/sotto-bench).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-3}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(8 32)
dir=${BENCH_DIR:-/tmp/sotto-bench}
rm -rf "$dir"
mkdir -p "$dir"

for n in "${counts[@]}"; do
  echo "bench: bare LibTorch baseline on shard 1 of $n" >&2
  /usr/bin/time -f '%M' -o "$dir/bare-$n.rss" "$root/build/bin/sotto_bare_train" "$n" 0 > "$dir/bare-$n.txt"
  echo "bench: $n clients, $rounds rounds" >&2
  DEMO_SKIP_BUILD=1 DEMO_MEASURE_RSS=1 DEMO_CLIENTS="$n" DEMO_ROUNDS="$rounds" DEMO_DIR="$dir/run-$n" \
    "$root/scripts/demo.sh" > "$dir/demo-$n.txt"
done

python3 - "$dir" "${counts[@]}" <<'PY'
import datetime, glob, json, os, re, statistics, sys
d, counts = sys.argv[1], sys.argv[2:]
def kib(path): return int(open(path).read().split()[-1])
# Averaging: the strategy's part ("aggregation") plus, in secure rounds, the per-update work before it (checking
# and adding the masked inputs, unmasking, decoding the sum); both parts are shown.
print("| clients | coordination s/round after round 1 (median, max) | averaging ms/round (median): total = "
      "secure per-update work + strategy | start-up s | "
      "round 1: coordination s (LibTorch loads included) | launch to round 1 closed s | "
      "aggregator peak RSS MiB | client peak RSS MiB (max) | bare LibTorch RSS MiB | client/bare | final test acc |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
notes = []
for n in counts:
    run = os.path.join(d, "run-" + n)
    rows = [json.loads(l) for l in open(os.path.join(run, "state", "rounds.jsonl"))]
    coord = [r["seconds"]["training"] - r["seconds"]["slowest_client_training"] for r in rows]
    secure_ms = [1000 * sum(r["seconds"].get(k, 0) for k in ("secure_summing", "secure_unmasking", "secure_decoding"))
                 for r in rows]
    strategy_ms = [1000 * r["seconds"]["aggregation"] for r in rows]
    avg_ms = [a + b for a, b in zip(secure_ms, strategy_ms)]
    launched = float(open(os.path.join(run, "logs", "launched_at")).read())
    started = None
    for line in open(os.path.join(run, "logs", "aggregator.log")):
        if "round 1: training started" in line:
            ts = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
            started = ts.replace(tzinfo=datetime.datetime.now().astimezone().tzinfo).timestamp()
            break
    agg = kib(os.path.join(run, "logs", "aggregator.rss")) / 1024
    clients = [kib(p) / 1024 for p in glob.glob(os.path.join(run, "logs", "client-*.rss"))]
    bare = kib(os.path.join(d, "bare-%s.rss" % n)) / 1024
    # Clients load LibTorch once admitted to their first round (common/ml/torch_runtime.h): round 1's
    # coordination includes that load, so it is reported apart from the later rounds'.
    later = coord[1:] or coord
    if any("privacy" in r and r["seconds"]["slowest_client_training"] == 0 for r in rows):
        notes.append(f"{n} clients: under distributed DP the devices report no training time, so coordination "
                     "includes the training (run with DEMO_SECAGG=0 for the overhead alone)")
    print("| %s | %.3f, %.3f | %.2f = %.2f + %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %.2f | %.4f |" % (
        n, statistics.median(later), max(later), statistics.median(avg_ms), statistics.median(secure_ms),
        statistics.median(strategy_ms), started - launched, coord[0],
        started - launched + rows[0]["seconds"]["training"], agg, max(clients), bare, max(clients) / bare,
        rows[-1].get("test_accuracy", float("nan"))))
for note in notes:
    print("\nNote: " + note)
PY
