#!/usr/bin/env bash
# run_personalization.sh: the personalization experiment of issue 14 (simulations/experiments/personalization/),
# resumable: it runs, one after another, the (setting, method, seed) runs whose OUT/SETTING/METHOD/seed-S/summary.json
# is missing, and stops launching new ones once -t seconds have passed, so the table is built in several parts. A
# run cut off midway starts again from round 1; its partial output is removed first.
#
#   simulations/run_personalization.sh [-o sim-runs/personalization] [-b build] [-t SECONDS] [-r ROUNDS]
#                                      [-s SETTING] [METHOD...]
#
# SETTING: pathological_100 (100 clients of 2 classes, 10 per round, seeds 1 2 3) and pflib_20 (20 clients of 2
# classes, all in every round, seed 1); default both. METHOD (default all): fedavg, fedavg_ft (fine-tuning one
# epoch after each round), fedper (personal head fc2), fedrep (head fc2, 2 head epochs before the body's), ditto
# (lambda 0.1), fedbn (every BatchNorm tensor personal), local (no federation). Seed s sets seed, data.seed and
# model.init_seed. -r overrides the rounds for a quick look (those runs go to OUT/SETTING-rROUNDS, apart). After each run OUT/personalization.md is rewritten:
# per setting and method, the mean and 10th percentile over clients of the held-out accuracy after the last round
# (global model with the client's personal tensors, and the client's personal model), mean ± standard deviation
# over the seeds; and OUT/SETTING.png, seed 1's per-round held-out accuracy of each round's clients.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="sim-runs/personalization"
build="$here/../build"
budget=0
rounds=""
settings=(pathological_100 pflib_20)
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "o:b:t:r:s:h" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    b) build="$OPTARG" ;;
    t) budget="$OPTARG" ;;
    r) rounds="$OPTARG" ;;
    s) settings=("$OPTARG") ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
sim="$build/bin/sotto-sim"
[ -x "$sim" ] || { echo "run_personalization.sh: $sim not found; build first (scripts/build.sh)" >&2; exit 1; }
all=(fedavg fedavg_ft fedper fedrep ditto fedbn local)
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=("${all[@]}")

# The --set overrides of one method.
overrides() {
  case "$1" in
    fedavg) ;;
    fedavg_ft) echo 'personalization.finetune_epochs=1' ;;
    fedper) echo 'personalization.personal=["fc2.*"]' ;;
    fedrep) echo 'personalization.personal=["fc2.*"] personalization.head_epochs=2' ;;
    ditto) echo 'personalization.ditto_lambda=0.1' ;;
    fedbn) echo 'personalization.personal=["bn*"]' ;;
    local) echo 'personalization.local_only=true' ;;
    *) echo "run_personalization.sh: unknown method '$1' (see -h)" >&2; return 2 ;;
  esac
}
seeds_of() { [ "$1" = pflib_20 ] && echo 1 || echo 1 2 3; }

set -f  # the overrides hold glob characters (fc2.*, bn*)
start=$(date +%s)
mkdir -p "$out"
spent() { [ "$budget" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$budget" ]; }
for setting in "${settings[@]}"; do
  config="$here/experiments/personalization/$setting.toml"
  [ -f "$config" ] || { echo "run_personalization.sh: no setting $config" >&2; exit 2; }
  for s in $(seeds_of "$setting"); do
    for m in "${methods[@]}"; do
      sets=$(overrides "$m") || exit 2
      dir="$out/$setting${rounds:+-r$rounds}/$m/seed-$s"
      [ -f "$dir/summary.json" ] && continue
      if spent; then echo "run_personalization.sh: the -t $budget s budget is spent; run again to go on"; break 3; fi
      rm -rf "$dir"
      mkdir -p "$(dirname "$dir")"
      args=(--config "$config" --output "$dir" --set "seed=$s" --set "data.seed=$s" --set "model.init_seed=$s")
      for x in $sets; do args+=(--set "$x"); done
      [ -z "$rounds" ] || args+=(--set "rounds=$rounds")
      echo "$setting/$m/seed-$s: $sim ${args[*]}"
      "$sim" "${args[@]}" > "$dir.log" 2>&1 || { echo "$setting/$m seed $s failed; see $dir.log" >&2; exit 1; }
      tail -1 "$dir.log"
    done
  done
done

python3 - "$out" "${all[@]}" > "$out/personalization.md" <<'PY'
import json, os, statistics, sys
out, methods = sys.argv[1], sys.argv[2:]
settings = [s for s in sorted(os.listdir(out)) if s != "curves"]
def cell(values):
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}" if len(values) > 1 else f"{100 * values[0]:.1f}"
for setting in settings:
    if not os.path.isdir(os.path.join(out, setting)):
        continue
    print(f"### {setting}\n")
    print("| method | personal: mean % | personal: 10th percentile % | global: mean % | global: 10th percentile % "
          "| seeds | seconds per run |")
    print("|---|---|---|---|---|---|---|")
    for m in methods:
        d = os.path.join(out, setting, m)
        runs = [json.load(open(os.path.join(d, s, "summary.json"))) for s in sorted(os.listdir(d) if os.path.isdir(d) else [])
                if os.path.exists(os.path.join(d, s, "summary.json"))]
        if not runs:
            continue
        le = [r["local_evaluation"] for r in runs]
        g = [e["global"] for e in le if e.get("global")]
        print(f"| `{m}` | {cell([e['personal']['mean'] for e in le])} | {cell([e['personal']['p10'] for e in le])} | "
              f"{cell([x['mean'] for x in g])} | {cell([x['p10'] for x in g])} | {len(runs)} | "
              f"{statistics.mean(r['total_seconds'] for r in runs):.0f} |")
    print()
PY
cat "$out/personalization.md"
for setting in "${settings[@]}"; do
  setting="$setting${rounds:+-r$rounds}"
  dirs=()
  for m in "${all[@]}"; do
    run="$out/$setting/$m/seed-1"
    [ -f "$run/summary.json" ] || continue
    mkdir -p "$out/curves/$setting"
    ln -sfn "$(cd "$run" && pwd)" "$out/curves/$setting/$m"
    # The model each method's clients use: the adapted one (column 18), else the global with its personal tensors.
    case "$m" in fedavg_ft|ditto|local) col=18 ;; *) col=16 ;; esac
    dirs+=("$out/curves/$setting/$m@$col")
  done
  [ ${#dirs[@]} -eq 0 ] || "$here/plot_compare.sh" -o "$out/$setting.png" -y "held-out accuracy" \
    -t "$setting, seed 1: the round's clients' mean held-out accuracy of the model they use" "${dirs[@]}" || true
done
