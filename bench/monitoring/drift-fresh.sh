#!/usr/bin/env bash
# `kiln drift` as a user runs it, a fresh process each time, variants in alternating rounds (docs/benchmarks.md,
# ## Monitoring). Each variant is NAME=COMMAND, COMMAND being a kiln binary, optionally after `env VAR=VALUE ...`.
# Every round runs every variant once, starting with a different one each round; per run it prints wall and CPU
# (user + system) seconds from /usr/bin/time, the ratio to the first variant in the same round, and the load average;
# then the medians.
#
# Data: dotnet run -c Release --project bench/Kiln.Bench.Monitoring -- files --dir DIR --rows 1000000 --features 20
# Usage: bench/monitoring/drift-fresh.sh DIR ROUNDS NAME=COMMAND [NAME=COMMAND ...] [-- extra kiln drift arguments]
set -euo pipefail
dir="$1"; rounds="$2"; shift 2
names=(); commands=(); extra=()
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then shift; extra=("$@"); break; fi
  names+=("${1%%=*}"); commands+=("${1#*=}"); shift
done
n=${#names[@]}
[[ $n -ge 1 ]] || { echo "give at least one NAME=COMMAND" >&2; exit 2; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
declare -A walls cpus ratios
for v in "${names[@]}"; do walls[$v]=""; cpus[$v]=""; ratios[$v]=""; done
for ((r = 1; r <= rounds; r++)); do
  declare -A wall=() cpu=()
  for ((k = 0; k < n; k++)); do
    i=$(( (k + r - 1) % n ))
    # shellcheck disable=SC2086
    if ! /usr/bin/time -f "%e %U %S" -o "$tmp/t" ${commands[$i]} drift --model "$dir/model" --current "$dir/current.parquet" \
        --fail-on-drift false "${extra[@]}" > /dev/null 2> "$tmp/err"; then
      echo "${names[$i]} failed:" >&2; cat "$tmp/err" >&2; exit 1
    fi
    read -r e u s < <(tail -1 "$tmp/t")
    wall[${names[$i]}]=$e
    cpu[${names[$i]}]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
  done
  line="round $r (load $(cut -d' ' -f1 /proc/loadavg)):"
  for v in "${names[@]}"; do
    ratio=$(awk -v a="${wall[$v]}" -v b="${wall[${names[0]}]}" 'BEGIN { printf "%.2f", a / b }')
    line+="  $v ${wall[$v]} s wall / ${cpu[$v]} s cpu (x$ratio)"
    walls[$v]+="${wall[$v]} "; cpus[$v]+="${cpu[$v]} "; ratios[$v]+="$ratio "
  done
  echo "$line"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for v in "${names[@]}"; do
  echo "median $v: $(echo "${walls[$v]}" | median) s wall, $(echo "${cpus[$v]}" | median) s cpu, wall ratio to ${names[0]} $(echo "${ratios[$v]}" | median) (runs: ${walls[$v]})"
done
