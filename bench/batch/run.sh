#!/usr/bin/env bash
# Batch benchmark: ROWS rows x 3 float features, Parquet -> Parquet, with a 100-tree random forest trained by Kiln.
# Peers in the same run: pandas + scikit-learn predict_proba in 100k-row chunks, and Kiln's model-only throughput.
# Usage: bench/batch/run.sh [ROWS]   (default 10,000,000; work files in ${BENCH_DIR:-/tmp/kiln-bench-batch})
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows="${1:-10000000}"
dir="${BENCH_DIR:-/tmp/kiln-bench-batch}"
py=/usr/bin/python3
mkdir -p "$dir"
command -v /usr/bin/time >/dev/null || { echo "install GNU time: apt-get install time" >&2; exit 1; }

echo "== build"
dotnet build "$root/bench/Kiln.Bench.Batch" -c Release -nologo -v quiet -o "$dir/bench-bin" >/dev/null
dotnet build "$root/src/Kiln.Cli" -c Release -nologo -v quiet -o "$dir/kiln-bin" >/dev/null
kiln="$dir/kiln-bin/kiln"

if [[ ! -f "$dir/data.parquet" || "$(cat "$dir/rows" 2>/dev/null)" != "$rows" ]]; then
  echo "== generate $rows rows (seed 42)"
  "$dir/bench-bin/Kiln.Bench.Batch" gen "$rows" "$dir"
  echo "$rows" > "$dir/rows"
fi

cp "$root/bench/batch/forest3.yaml" "$dir/spec.yaml"
echo "== train (Kiln, fast_forest, 100 trees)"
rm -rf "$dir/model"
"$kiln" train "$dir/spec.yaml" --out "$dir/model" >/dev/null 2>&1

echo "== Kiln model-only (rows already in memory)"
"$dir/bench-bin/Kiln.Bench.Batch" model-only "$dir/model" "$dir/data.parquet" | tee "$dir/model-only.txt"

echo "== Kiln end to end: kiln batch Parquet -> Parquet"
rm -rf "$dir/out"
/usr/bin/time -v "$kiln" batch --model "$dir/model" --input "$dir/data.parquet" --output "$dir/out" --keep id --json \
  > "$dir/kiln.json" 2> "$dir/kiln.time"
cat "$dir/kiln.json"
grep -E "Elapsed \(wall|Maximum resident" "$dir/kiln.time"

echo "== Kiln end to end: kiln batch CSV -> Parquet (the same rows as the pandas peer reads)"
rm -rf "$dir/out-csv"
/usr/bin/time -v "$kiln" batch --model "$dir/model" --input "$dir/data.csv" --output "$dir/out-csv" --keep id --json \
  > "$dir/kiln-csv.json" 2> "$dir/kiln-csv.time"
cat "$dir/kiln-csv.json"
grep -E "Elapsed \(wall|Maximum resident" "$dir/kiln-csv.time"

echo "== pandas + scikit-learn (100k-row chunks)"
/usr/bin/time -v "$py" "$root/bench/batch/pandas_peer.py" "$dir" 2> "$dir/pandas.time" | tee "$dir/pandas.txt"
grep -E "Maximum resident" "$dir/pandas.time"
echo "machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2/1024/1024 " GiB"}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
