#!/usr/bin/env bash
# run_dp_experiment.sh: the privacy-utility experiment of issue 13 (simulations/experiments/dp_privacy_utility/),
# resumable: it runs, one after another, the variants whose OUT/VARIANT/summary.json is missing, and stops
# launching new ones once -t seconds have passed, so the table is built in several parts. A run cut off
# midway starts again from round 1 next time; its partial output is removed first.
#
#   simulations/run_dp_experiment.sh [-o sim-runs/dp] [-b build] [-t SECONDS] [-r ROUNDS] [VARIANT...]
#
# VARIANT (default: all of them): nodp; central_eps3, central_eps8; ddg32_eps3, ddg16_eps3, ddg12_eps3,
# ddg32_eps8, ddg16_eps8, ddg12_eps8 (privacy.mode = "distributed" at that many bits); local_eps8. Each DP variant
# sets privacy.target_epsilon (at delta 1e-5) and lets the noise multiplier be computed so that the rounds exactly
# fit it. -r overrides the rounds (300) for a quick look. After each run, OUT/dp_experiment.md is rewritten: final
# and best test accuracy, the epsilon spent against the released models and against the aggregator, the noise
# multiplier, the canaries' empirical epsilon, and for each target epsilon how many rounds the PLD accountant
# allows at the RDP noise multiplier.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="sim-runs/dp"
build="$here/../build"
budget=0
rounds=""
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "o:b:t:r:h" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    b) build="$OPTARG" ;;
    t) budget="$OPTARG" ;;
    r) rounds="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
sim="$build/bin/sotto-sim"
dp="$build/bin/sotto-dp"
for tool in "$sim" "$dp"; do
  [ -x "$tool" ] || { echo "run_dp_experiment.sh: $tool not found; build first (scripts/build.sh)" >&2; exit 1; }
done
all=(nodp central_eps3 central_eps8 ddg32_eps3 ddg16_eps3 ddg12_eps3 ddg32_eps8 ddg16_eps8 ddg12_eps8 local_eps8)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=("${all[@]}")

# The --set overrides of one variant.
overrides() {
  local v=$1 eps=${1##*_eps}
  case "$v" in
    nodp) ;;
    central_eps*) echo "privacy.mode=\"central\" privacy.target_epsilon=$eps.0" ;;
    ddg*_eps*) local bits=${v#ddg}; bits=${bits%%_*}
      echo "privacy.mode=\"distributed\" secure_aggregation.bits=$bits privacy.target_epsilon=$eps.0" ;;
    local_eps*) echo "privacy.mode=\"local\" privacy.target_epsilon=$eps.0" ;;
    *) echo "run_dp_experiment.sh: unknown variant '$v' (see -h)" >&2; return 2 ;;
  esac
}

start=$(date +%s)
mkdir -p "$out"
for v in "${variants[@]}"; do
  sets=$(overrides "$v") || exit 2
  [ -f "$out/$v/summary.json" ] && { echo "$v: done before, kept"; continue; }
  if [ "$budget" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$budget" ]; then
    echo "run_dp_experiment.sh: the -t $budget s budget is spent; run again to go on"
    break
  fi
  rm -rf "${out:?}/$v"
  args=(--config "$here/experiments/dp_privacy_utility/base.toml" --output "$out/$v")
  for s in $sets; do args+=(--set "$s"); done
  [ -z "$rounds" ] || args+=(--set "rounds=$rounds")
  echo "$v: $sim ${args[*]}"
  "$sim" "${args[@]}" > "$out/$v.log" 2>&1 || { echo "$v failed; see $out/$v.log" >&2; exit 1; }
  tail -1 "$out/$v.log"
done

python3 - "$out" "$dp" "${all[@]}" <<'PY'
import json, os, subprocess, sys
out, dp, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for v in variants:
    d = os.path.join(out, v)
    if not os.path.exists(os.path.join(d, "summary.json")):
        continue
    s = json.load(open(os.path.join(d, "summary.json")))
    lines = [json.loads(l) for l in open(os.path.join(d, "rounds.jsonl"))]
    done = [l for l in lines if l.get("status") == "completed"]
    p = done[-1].get("privacy") if done else None
    cell = lambda x, f="{:.3g}": "–" if x is None else f.format(x)
    rows.append(f"| `{v}` | {s['rounds']} | {100 * s['final_accuracy']:.1f} | {100 * s['best_accuracy']:.1f} | "
                f"{cell(p and p.get('epsilon_released'))} | {cell(p and p.get('epsilon'))} | "
                f"{cell(p and p.get('noise_multiplier'))} | {cell(s.get('canaries', {}).get('epsilon_empirical'))} | "
                f"{s['total_seconds']:.0f} |")

def run(*args):
    return json.loads(subprocess.run([dp, *args], check=True, capture_output=True, text=True).stdout)

q, delta, steps = str(100 / 6000), "1e-5", 300
pld_rows = []
for eps in (3, 8):
    z = run("noise-multiplier", "--sampling-rate", q, "--steps", str(steps), "--delta", delta,
            "--target-epsilon", str(eps))["noise_multiplier"]
    eps_of = lambda n: run("epsilon", "--sampling-rate", q, "--noise-multiplier", str(z), "--steps", str(n),
                           "--delta", delta, "--accountant", "pld")["epsilon"]
    lo, hi = steps, steps * 2
    while eps_of(hi) <= eps:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if eps_of(mid) <= eps else (lo, mid)
    pld_rows.append(f"| {eps} | {z:.4f} | {steps} | {lo} | {lo / steps:.2f}x |")

with open(os.path.join(out, "dp_experiment.md"), "w") as f:
    f.write("| variant | rounds | final test accuracy % | best % | epsilon (released models) | "
            "epsilon (against the aggregator) | noise multiplier | empirical epsilon (canaries) | seconds |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    f.write("\n".join(rows) + "\n\n")
    f.write("Rounds the PLD accountant allows at the noise multiplier that RDP fits to 300 rounds (q = 1/60, "
            "delta = 1e-5, the central Gaussian; to within 1%):\n\n| target epsilon | noise multiplier | RDP rounds | "
            "PLD rounds | PLD / RDP |\n|---|---|---|---|---|\n")
    f.write("\n".join(pld_rows) + "\n")
print(open(os.path.join(out, "dp_experiment.md")).read())
PY
