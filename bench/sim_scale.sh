#!/usr/bin/env bash
# sim_scale.sh: sotto-sim's memory and round time as the registered population grows (BENCHMARKS.md, issue 4).
#
#   bench/sim_scale.sh [BUILD_DIR]
#
# For populations of 1,000, 100,000 and 1,000,000 registered clients, with cohorts of 100 of ~60 examples each
# (data.num_shards = 1000: an IID partition into 1,000 shards of 60, client c holding shard c mod 1000, i.e. the
# data sampled with replacement, as the issue allows), 3 rounds, evaluation on 1,000 test images: peak RSS (GNU time) and the mean round time from rounds.jsonl. Prints a Markdown table.
# The goal: under 2 GiB at a million, and a round's time flat in the number of registered clients.
set -euo pipefail

build="${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
sim="$build/bin/sotto-sim"
[ -x "$sim" ] || { echo "sim_scale.sh: $sim not found; build first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "sim_scale.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
work="$(mktemp -d /tmp/sotto-sim-scale-XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "| registered clients | cohort | peak RSS (MiB) | mean round (s) | outside rounds: data, partition, model, outputs (s) |"
echo "|---|---|---|---|---|"
for population in 1000 100000 1000000; do
  out="$work/p$population"
  /usr/bin/time -f "%M %e" -o "$work/time" "$sim" --set population=$population --set cohort_size=100 \
    --set rounds=3 --set data.num_shards=1000 --set evaluation.max_examples=1000 --set plots=false \
    --output "$out" 2>"$work/log"
  read -r rss_kib wall < "$work/time"
  python3 - "$out/rounds.jsonl" "$population" "$rss_kib" "$wall" <<'EOF'
import json, sys
path, population, rss_kib, wall = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rounds = [json.loads(line)["seconds"]["round"] for line in open(path)]
mean = sum(rounds) / len(rounds)
print(f"| {population:,} | 100 | {rss_kib / 1024:.0f} | {mean:.2f} | {wall - sum(rounds):.1f} |")
EOF
done
