#!/usr/bin/env bash
# Distributed batch benchmark: ROWS rows x 3 float features in a CSV file, scored by a 100-tree forest
# (the model of bench/batch/run.sh) with `kiln batch --distributed` on 1, 2 and 3 `kiln worker` processes
# (--concurrency 1 each), and in one process by plain `kiln batch` (the peer), in alternating rounds.
# Then the overhead per partition: one worker, the same input as PARTS_SMALL and PARTS_BIG partitions.
# Each round prints rows/s and the ratio one process / N workers (above 1: one process is faster).
# Usage: bench/batch/distributed.sh [ROWS] [ROUNDS]   (default 2,000,000 rows, 3 rounds)
# Environment: WORKERS (the worker counts of a round, default "1 2 3"), PARTS (partitions, default 12),
# PARTS_SMALL/PARTS_BIG (the overhead runs, default 2 and 40; OVERHEAD=0 skips them), KILN_BIN (a directory
# holding an already built kiln, e.g. an older commit's, instead of building this tree), WARM=1 (each round's
# workers first run an untimed 2-partition job, as long-running workers would be warm), BENCH_DIR.
# Needs PostgreSQL: $KILN_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:55432/postgres) and psql.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows="${1:-2000000}"
rounds="${2:-3}"
parts="${PARTS:-12}"
dir="${BENCH_DIR:-/tmp/kiln-bench-distributed}"
admin="${KILN_BENCH_POSTGRES:-postgresql://postgres@127.0.0.1:55432/postgres}"
mkdir -p "$dir"

echo "== build"
[[ -x "$dir/bench-bin/Kiln.Bench.Batch" ]] || dotnet build "$root/bench/Kiln.Bench.Batch" -c Release -nologo -v quiet -o "$dir/bench-bin" >/dev/null
if [[ -n "${KILN_BIN:-}" ]]; then
  kiln="$KILN_BIN/kiln"
else
  dotnet build "$root/src/Kiln.Cli" -c Release -nologo -v quiet -o "$dir/kiln-bin" >/dev/null
  kiln="$dir/kiln-bin/kiln"
fi
counts="${WORKERS:-1 2 3}"

if [[ ! -f "$dir/data.csv" || "$(cat "$dir/rows" 2>/dev/null)" != "$rows" ]]; then
  echo "== generate $rows rows (seed 42)"
  "$dir/bench-bin/Kiln.Bench.Batch" gen "$rows" "$dir"
  echo "$rows" > "$dir/rows"
fi
if [[ ! -d "$dir/model" ]]; then
  cp "$root/bench/batch/forest3.yaml" "$dir/spec.yaml"
  echo "== train"
  (cd "$dir" && "$kiln" train spec.yaml --out model >/dev/null 2>&1)
fi

db_name="kiln_bench_dist"
psql "$admin" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null
psql "$admin" -qc "CREATE DATABASE $db_name" >/dev/null
db="${admin%/*}/$db_name"

workers=()
start_workers() {
  for _ in $(seq 1 "$1"); do
    "$kiln" worker --db "$db" --queues batch --concurrency 1 > "$dir/worker.out" 2>> "$dir/worker.err" &
    workers+=($!)
  done
  # Ready when every worker is registered with Hangfire.
  for _ in $(seq 1 600); do
    n=$(psql "$db" -tAc "SELECT count(*) FROM hangfire.server" 2>/dev/null || echo 0)
    [[ "$n" -ge "$1" ]] && return
    sleep 0.1
  done
  echo "workers did not start" >&2; exit 1
}
stop_workers() {
  for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
  workers=()
  psql "$db" -qc "DELETE FROM hangfire.server" >/dev/null 2>&1 || true
}
trap stop_workers EXIT

seconds() { # seconds of a command's wall time
  local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>> "$dir/run.err"; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

# The schema of hangfire and kiln_schema are created by a first, untimed job.
start_workers 1
rm -rf "$dir/out"; "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out" --keep id --distributed --db "$db" --partitions 2 >/dev/null 2>&1
stop_workers

echo "== rows/s, $rows rows, $parts partitions; round: local, then $counts workers (ratio = local / workers)"
results="$dir/results.txt"; : > "$results"
for r in $(seq 1 "$rounds"); do
  rm -rf "$dir/out"
  local_s=$(seconds "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out" --keep id)
  line="round $r local $(printf %.0f "$(echo "$rows / $local_s" | bc -l)")"
  for w in $counts; do
    start_workers "$w"
    if [[ "${WARM:-0}" == 1 ]]; then
      rm -rf "$dir/out"; "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out" --keep id --distributed --db "$db" --partitions 2 >/dev/null 2>&1
    fi
    rm -rf "$dir/out"
    s=$(seconds "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out" --keep id --distributed --db "$db" --partitions "$parts")
    stop_workers
    line="$line w$w $(printf %.0f "$(echo "$rows / $s" | bc -l)") ratio $(printf %.2f "$(echo "$s / $local_s" | bc -l)")"
  done
  echo "$line" | tee -a "$results"
done

if [[ "${OVERHEAD:-1}" != 0 ]]; then
echo "== overhead per partition: 1 worker, ${PARTS_SMALL:-2} vs ${PARTS_BIG:-40} partitions"
start_workers 1
for r in $(seq 1 "$rounds"); do
  rm -rf "$dir/out"; a=$(seconds "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out" --keep id --distributed --db "$db" --partitions "${PARTS_SMALL:-2}")
  rm -rf "$dir/out"; b=$(seconds "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out" --keep id --distributed --db "$db" --partitions "${PARTS_BIG:-40}")
  echo "round $r small ${a}s big ${b}s overhead_ms $(printf %.0f "$(echo "($b - $a) * 1000 / (${PARTS_BIG:-40} - ${PARTS_SMALL:-2})" | bc -l)")" | tee -a "$results"
done
stop_workers
fi
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results"
