#!/usr/bin/env bash
# plot_compare.sh: draws several sotto-sim runs' test accuracy per round in one PNG.
#
#   simulations/plot_compare.sh [-o compare.png] [-t TITLE] [-c COLUMN] [-y YLABEL] RUN_DIR[@COLUMN]...
#
# Each RUN_DIR is a sotto-sim output directory (it holds rounds.csv); the legend uses the directory's name. The
# curve is rounds.csv's column COLUMN (1-based; default 3, test accuracy; 16 and 18 are the round's clients' mean
# held-out accuracy of the global and of the personal model), per directory after an @ (a run directory whose own
# name holds an '@' is taken whole). A column that is not a number is refused. Rows whose column is 0 are skipped.
# Needs gnuplot (Debian: gnuplot-nox, in scripts/install-deps.sh).
set -euo pipefail

out="compare.png"
title="test accuracy per round"
column=3
ylabel="test accuracy"
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "o:t:c:y:h" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    t) title="$OPTARG" ;;
    c) column="$OPTARG" ;;
    y) ylabel="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
  usage >&2
  exit 2
fi
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plot_compare.sh: gnuplot is not installed (apt-get install gnuplot-nox, or scripts/install-deps.sh)" >&2
  exit 1
fi

gp_quote() { printf "'%s'" "${1//\'/\'\'}"; }
plots=()
for arg in "$@"; do
  # RUN_DIR@COLUMN, unless RUN_DIR itself is a run whose name holds an '@'.
  dir="$arg"
  col="$column"
  if [ ! -f "$arg/rounds.csv" ] && [[ "$arg" == *@* ]]; then
    dir="${arg%@*}"
    col="${arg##*@}"
  fi
  if ! [[ "$col" =~ ^[1-9][0-9]*$ ]]; then
    echo "plot_compare.sh: '$col' (for $dir) is not a column number of rounds.csv (1-based)" >&2
    exit 2
  fi
  csv="$dir/rounds.csv"
  if [ ! -f "$csv" ]; then
    echo "plot_compare.sh: $csv does not exist: is $dir a sotto-sim output directory?" >&2
    exit 1
  fi
  name="$(basename "$(cd "$dir" && pwd)")"
  plots+=("$(gp_quote "$csv") using 1:(\$$col > 0 ? \$$col : 1/0) with linespoints title $(gp_quote "$name")")
done
joined="$(IFS=,; echo "${plots[*]}")"

gnuplot <<GP
set datafile separator ','
set terminal pngcairo size 1000,600 noenhanced
set output $(gp_quote "$out")
set title $(gp_quote "$title")
set grid
set key bottom right
set xlabel 'round'
set ylabel $(gp_quote "$ylabel")
plot ${joined}
GP
echo "plot_compare.sh: wrote $out"
