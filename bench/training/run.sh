#!/usr/bin/env bash
# Training benchmarks (issue 2, "Speed"): profiling 1M x 20, loading 1M rows from CSV and Parquet
# next to pandas.read_csv, and the seed article's model next to scikit-learn, all in one run.
# Data comes from fixed seeds and is written to bench/results/training-data/; the figures go to
# bench/results/training.json and a table on stdout. See docs/benchmarks.md, "Training".
# Extra arguments are passed to the bench (e.g. --rows 200000 --only train --leaves 512).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
python=/usr/bin/python3
"$python" -c 'import pandas, sklearn' 2>/dev/null || { echo "run.sh: $python needs pandas and scikit-learn (Debian: python3-pandas python3-sklearn)" >&2; exit 1; }
echo "run.sh: building bench/Kiln.Bench.Training (Release)..." >&2
dotnet build bench/Kiln.Bench.Training -c Release -nologo -v q -clp:ErrorsOnly >&2
exec dotnet bench/Kiln.Bench.Training/bin/Release/net10.0/Kiln.Bench.Training.dll \
  --work bench/results/training-data --out bench/results/training.json \
  --scripts bench/training --python "$python" "$@"
