#!/usr/bin/env bash
# Tree-evaluator benchmarks (docs/benchmarks.md#tree-ensemble-evaluator).
#   bench/trees/run.sh model [ROWS] [ROUNDS]   model-only, the seed article's forest, one thread per peer, alternating rounds
#   bench/trees/run.sh multiclass [ROWS] [ROUNDS]  multiclass fast_forest/fast_tree/lightgbm: Kiln's scorer against
#                                              KILN_TREE_EVALUATOR=mlnet, one thread, alternating rounds
#   bench/trees/run.sh onnx [ROWS] [ROUNDS]    ONNX TreeEnsemble graphs (the seed forest, a scikit-learn forest): Kiln's
#                                              evaluator against ONNX Runtime's, one thread each, alternating rounds
#   bench/trees/run.sh batch [ROWS] [ROUNDS]   `kiln batch` Parquet -> Parquet end to end, Kiln's evaluator against
#                                              KILN_TREE_EVALUATOR=mlnet, alternating rounds (bench/batch's data and forest)
# Work files in ${BENCH_DIR:-/tmp/kiln-bench-trees}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${BENCH_DIR:-/tmp/kiln-bench-trees}"
mode="${1:-model}"
mkdir -p "$dir"
case "$mode" in
  model)
    dotnet build "$root/bench/Kiln.Bench.Trees" -c Release -nologo -v quiet -o "$dir/bench-bin" >/dev/null
    "$dir/bench-bin/Kiln.Bench.Trees" "$dir" "${2:-200000}" "${3:-7}"
    ;;
  multiclass)
    dotnet build "$root/bench/Kiln.Bench.Trees" -c Release -nologo -v quiet -o "$dir/bench-bin" >/dev/null
    "$dir/bench-bin/Kiln.Bench.Trees" multiclass "$dir" "${2:-50000}" "${3:-5}"
    ;;
  onnx)
    dotnet build "$root/bench/Kiln.Bench.Trees" -c Release -nologo -v quiet -o "$dir/bench-bin" >/dev/null
    # forest.onnx (the seed article's forest as a TreeEnsembleRegressor) comes from the model mode's preparation.
    [[ -f "$dir/forest.onnx" ]] || "$dir/bench-bin/Kiln.Bench.Trees" "$dir" 1000 1 >/dev/null
    "$dir/bench-bin/Kiln.Bench.Trees" onnx "$dir" "$root" "${2:-200000}" "${3:-7}"
    ;;
  batch)
    rows="${2:-2000000}"; rounds="${3:-3}"
    dotnet build "$root/bench/Kiln.Bench.Batch" -c Release -nologo -v quiet -o "$dir/batch-bin" >/dev/null
    dotnet build "$root/src/Kiln.Cli" -c Release -nologo -v quiet -o "$dir/kiln-bin" >/dev/null
    kiln="$dir/kiln-bin/kiln"
    data="$dir/batch-data"
    if [[ ! -f "$data/data.parquet" || "$(cat "$data/rows" 2>/dev/null)" != "$rows" ]]; then
      "$dir/batch-bin/Kiln.Bench.Batch" gen "$rows" "$data"
      echo "$rows" > "$data/rows"
    fi
    # The batch benchmark's forest: 100 trees, 32 leaves, three features.
    cp "$root/bench/batch/forest3.yaml" "$data/spec.yaml"
    [[ -d "$data/model" ]] || "$kiln" train "$data/spec.yaml" --out "$data/model" >/dev/null 2>&1
    for ((i = 1; i <= rounds; i++)); do
      for evaluator in kiln mlnet; do
        [[ $((i % 2)) -eq 0 ]] && evaluator=$([[ $evaluator == kiln ]] && echo mlnet || echo kiln)
        rm -rf "$data/out-$evaluator"
        start=$(date +%s.%N)
        KILN_TREE_EVALUATOR=$evaluator "$kiln" batch --model "$data/model" --input "$data/data.parquet" --output "$data/out-$evaluator" --keep id >/dev/null
        end=$(date +%s.%N)
        echo "round $i: $evaluator $(python3 -c "print(f'{$rows / ($end - $start):,.0f} rows/s ({$end - $start:.2f} s)')")"
      done
    done
    ;;
  *) echo "usage: bench/trees/run.sh model|multiclass|onnx|batch [ROWS] [ROUNDS]" >&2; exit 2 ;;
esac
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
