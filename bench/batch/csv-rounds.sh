#!/usr/bin/env bash
# `kiln batch` CSV -> Parquet against pandas + scikit-learn, and against an earlier build of kiln, in rotated rounds,
# with wall and CPU seconds and the load average per run (docs/benchmarks.md#batch). Uses the data and model that
# bench/batch/run.sh made in ${BENCH_DIR:-/tmp/kiln-bench-batch}, and kiln builds made beforehand, e.g.
#   dotnet build src/Kiln.Cli -c Release -o /tmp/kiln-after     (and the same at the earlier commit into /tmp/kiln-before)
# Usage: bench/batch/csv-rounds.sh AFTER_DIR BEFORE_DIR [ROUNDS=1] [CSV=$BENCH_DIR/data.csv]   (NO_PANDAS=1: the two kilns only)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${BENCH_DIR:-/tmp/kiln-bench-batch}"
after="$1"; before="$2"; rounds="${3:-1}"; csv="${4:-$dir/data.csv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
systems=(after pandas before)
[[ -n "${NO_PANDAS:-}" ]] && systems=(after before)
for ((i = 1; i <= rounds; i++)); do
  for ((k = 0; k < ${#systems[@]}; k++)); do
    s="${systems[$(((k + i - 1) % ${#systems[@]}))]}"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    case "$s" in
      # pandas_peer.py trains its forest first and prints its own scoring time (read + predict + write), the figure to compare
      pandas) /usr/bin/time -f "%e %U %S" -o "$work/t" /usr/bin/python3 "$root/bench/batch/pandas_peer.py" "$dir" ;;
      *) rm -rf "$work/out"
         bin="$after"; [[ $s == before ]] && bin="$before"
         /usr/bin/time -f "%e %U %S" -o "$work/t" "$bin/kiln" batch --model "$dir/model" --input "$csv" --output "$work/out" --keep id >/dev/null ;;
    esac
    read -r e u sy < "$work/t"
    echo "round $i $s: process wall $e s, cpu $(python3 -c "print(round($u + $sy, 2))") s, load at start $load"
  done
done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
