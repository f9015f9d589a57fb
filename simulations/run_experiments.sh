#!/usr/bin/env bash
# run_experiments.sh: runs simulations/experiments/*.toml (or the ones named) for several seeds and tabulates them.
#
#   simulations/run_experiments.sh [-s "1 2 3"] [-o sim-runs] [-b build] [EXPERIMENT...]
#
# EXPERIMENT names a file under simulations/experiments/ without .toml (default: every top-level one; the
# NIID-Bench settings in experiments/niid_bench/ take ~50 minutes a run and are named explicitly, e.g.
# niid_bench/fedavg_dirichlet_0.5).
# Seed s sets seed, data.seed and model.init_seed to s, so runs differ in sampling, partition, initialisation
# and batch order. Each run goes to OUT/NAME/seed-S; OUT/experiments.md gets a markdown table (mean ± standard
# deviation over the seeds of the final and best test accuracy, and the wall time per run) and OUT/compare.png
# the first seed's accuracy curves (simulations/plot_compare.sh). Needs python3 and gnuplot (install-deps.sh).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
seeds="1 2 3"
out="sim-runs"
build="$here/../build"
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "s:o:b:h" opt; do
  case "$opt" in
    s) seeds="$OPTARG" ;;
    o) out="$OPTARG" ;;
    b) build="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
sim="$build/bin/sotto-sim"
[ -x "$sim" ] || { echo "run_experiments.sh: $sim not found; build first (cmake --build build --target sotto-sim)" >&2; exit 1; }

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$here"/experiments/*.toml; do names+=("$(basename "$f" .toml)"); done
fi

mkdir -p "$out"
first_seed_dirs=()
for name in "${names[@]}"; do
  config="$here/experiments/$name.toml"
  [ -f "$config" ] || { echo "run_experiments.sh: no experiment $config" >&2; exit 1; }
  for s in $seeds; do
    dir="$out/$name/seed-$s"
    mkdir -p "$out/$name"
    echo "run_experiments.sh: $name, seed $s -> $dir" >&2
    "$sim" --config "$config" --set "seed=$s" --set "data.seed=$s" --set "model.init_seed=$s" --output "$dir" \
      2> "$dir.log" || { echo "run_experiments.sh: $name seed $s failed; see $dir.log" >&2; exit 1; }
  done
  # plot_compare.sh labels each curve with its directory's name.
  mkdir -p "$(dirname "$out/curves/$name")"
  ln -sfn "$(cd "$out/$name/seed-${seeds%% *}" && pwd)" "$out/curves/$name"
  first_seed_dirs+=("$out/curves/$name")
done

python3 - "$out" "$seeds" "${names[@]}" > "$out/experiments.md" <<'EOF'
import json, statistics, sys
out, seeds, names = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
def fmt(values):
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * m:.1f} ± {100 * sd:.1f}"
print(f"| experiment | final test accuracy % | best test accuracy % | seconds per run | seeds |")
print(f"|---|---|---|---|---|")
for name in names:
    runs = [json.load(open(f"{out}/{name}/seed-{s}/summary.json")) for s in seeds]
    final = [r["final_accuracy"] for r in runs]
    best = [r["best_accuracy"] for r in runs]
    secs = statistics.mean(r["total_seconds"] for r in runs)
    print(f"| `{name}` | {fmt(final)} | {fmt(best)} | {secs:.0f} | {' '.join(seeds)} |")
EOF
cat "$out/experiments.md"
"$here/plot_compare.sh" -o "$out/compare.png" -t "test accuracy per round (seed ${seeds%% *})" "${first_seed_dirs[@]}"
echo "run_experiments.sh: table in $out/experiments.md, curves in $out/compare.png" >&2
