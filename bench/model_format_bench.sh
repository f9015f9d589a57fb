#!/usr/bin/env bash
# The TorchScript model against the built-in C++ module (method in BENCHMARKS.md): the same CNN (fashion_cnn, and
# models/export_model.py's fashion_cnn with the same layers) trained by a bare process (bench/bare_train.cc: one
# epoch of the same shard, batch 32, SGD) in interleaved pairs A B A B ..., so that both see the same machine
# state. Prints training throughput, model load time and peak RSS for each, and the ratios.
#   usage: bench/model_format_bench.sh [PAIRS [EXAMPLES]]     (defaults: 5 pairs; 6000 examples, shard 1 of 10)
# Needs a build (scripts/build.sh) and python3-torch.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pairs=${1:-5}
examples=${2:-6000}
dir=${BENCH_DIR:-/tmp/sotto-model-format-bench}
rm -rf "$dir"
mkdir -p "$dir"
/usr/bin/python3 "$root/models/export_model.py" export fashion_cnn "$dir/fashion_cnn.pt"

for i in $(seq "$pairs"); do
  for model in fashion_cnn "$dir/fashion_cnn.pt"; do
    tag=$([ "$model" = fashion_cnn ] && echo builtin || echo torchscript)
    /usr/bin/time -f '%M' -o "$dir/$tag-$i.rss" "$root/build/bin/sotto_bare_train" 10 0 "$model" "$examples" \
      > "$dir/$tag-$i.txt"
  done
done

python3 - "$dir" "$pairs" <<'PY'
import statistics, sys
d, pairs = sys.argv[1], int(sys.argv[2])
def run(tag, i):
    words = open(f"{d}/{tag}-{i}.txt").read().split()
    out = {words[k]: float(words[k + 1]) for k in range(0, len(words), 2)}
    out["rss_mib"] = int(open(f"{d}/{tag}-{i}.rss").read().split()[-1]) / 1024
    return out
rows = {tag: [run(tag, i) for i in range(1, pairs + 1)] for tag in ("builtin", "torchscript")}
ratios = [t["samples_per_second"] / b["samples_per_second"] for b, t in zip(rows["builtin"], rows["torchscript"])]
med = lambda tag, key: statistics.median(r[key] for r in rows[tag])
print("| model | samples/s (median) | load s | peak RSS MiB | test acc |")
print("|---|---|---|---|---|")
for tag in ("builtin", "torchscript"):
    print(f"| {tag} | {med(tag, 'samples_per_second'):.0f} | {med(tag, 'load_seconds'):.4f} | "
          f"{med(tag, 'rss_mib'):.0f} | {med(tag, 'test_accuracy'):.4f} |")
print(f"\ntorchscript/builtin throughput per pair: {', '.join(f'{r:.3f}' for r in ratios)}; "
      f"median {statistics.median(ratios):.3f}")
print(f"peak RSS torchscript/builtin: {med('torchscript', 'rss_mib') / med('builtin', 'rss_mib'):.3f}")
PY
