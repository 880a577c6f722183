#!/usr/bin/env bash
# The edge scorer (docs/benchmarks.md#edge-scorer): size on disk, process start to first prediction, rows/s.
#   bench/edge/run.sh [ROWS] [ROUNDS]
# The quickstart package is trained and exported with `kiln package export edge`; then, in alternating rounds,
# kiln-score and its peer `kiln batch` (the whole CLI, ML.NET's pipeline) score one row (start to first prediction:
# process start to exit, and its CPU time, which a loaded machine does not inflate) and ROWS rows of CSV (rows/s,
# process start to exit).
# Work files in ${BENCH_DIR:-/tmp/kiln-bench-edge}; KILN=path/to/kiln uses a CLI already built instead of building one.
# BASE=DIR adds a third peer in the same rounds: the kiln-score in DIR (an edge directory exported by another commit,
# e.g. a copy of $BENCH_DIR/edge made before a change), run on this run's model and signature (--model), so a change
# to the scorer is measured against its base.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${BENCH_DIR:-/tmp/kiln-bench-edge}"
rows="${1:-200000}"; rounds="${2:-5}"
mkdir -p "$dir"
kiln="${KILN:-}"
if [[ -z "$kiln" ]]; then
  dotnet build "$root/src/Kiln.Cli" -c Release -nologo -v quiet -o "$dir/kiln-bin" >/dev/null
  kiln="$dir/kiln-bin/kiln"
fi
[[ -d "$dir/fraud" ]] || "$kiln" train "$root/examples/quickstart/spec.yaml" --out "$dir/fraud" >/dev/null 2>&1
rm -rf "$dir/edge"
KILN_SOURCE_ROOT="$root" "$kiln" package export edge "$dir/fraud" --out "$dir/edge" >/dev/null
echo "size on disk: $(du -sb "$dir/edge" | cut -f1) bytes ($(du -sh "$dir/edge" | cut -f1)); files:"
ls -l "$dir/edge" | tail -n +2 | awk '{print "  " $5 "  " $9}'

# The inputs of the quickstart's recent traffic, repeated to ROWS rows.
python3 - "$root/examples/quickstart/recent.csv" "$dir" "$rows" <<'PY'
import csv, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src) as f:
    r = list(csv.reader(f))
header, body = r[0][1:7], [row[1:7] for row in r[1:]]
with open(f"{out}/rows.csv", "w") as f:
    f.write(",".join(header) + "\n")
    for i in range(n):
        f.write(",".join(body[i % len(body)]) + "\n")
with open(f"{out}/one.csv", "w") as f:
    f.write(",".join(header) + "\n" + ",".join(body[0]) + "\n")
PY

now() { date +%s.%N; }
results="$dir/results.txt"; : > "$results"
peers=(edge batch); [[ -n "${BASE:-}" ]] && peers+=(base)
for ((i = 1; i <= rounds; i++)); do
  # Rotated (and with two peers, reversed) every round, so each runs first as often as the others.
  order=(); for ((j = 0; j < ${#peers[@]}; j++)); do order+=("${peers[$(((i + j) % ${#peers[@]}))]}"); done
  for peer in "${order[@]}"; do
    rm -rf "$dir/out-one" "$dir/out-rows" "$dir/out-one.jsonl" "$dir/out-rows.jsonl"
    if [[ $peer == edge ]]; then
      s=$(now); /usr/bin/time -f "%U %S" -o "$dir/cpu" "$dir/edge/kiln-score" "$dir/one.csv" --out "$dir/out-one.jsonl"; e=$(now)
      s2=$(now); "$dir/edge/kiln-score" "$dir/rows.csv" --out "$dir/out-rows.jsonl"; e2=$(now)
    elif [[ $peer == base ]]; then
      s=$(now); /usr/bin/time -f "%U %S" -o "$dir/cpu" "$BASE/kiln-score" "$dir/one.csv" --model "$dir/edge" --out "$dir/out-one.jsonl"; e=$(now)
      s2=$(now); "$BASE/kiln-score" "$dir/rows.csv" --model "$dir/edge" --out "$dir/out-rows.jsonl"; e2=$(now)
    else
      s=$(now); /usr/bin/time -f "%U %S" -o "$dir/cpu" "$kiln" batch --model "$dir/fraud" --input "$dir/one.csv" --output "$dir/out-one" >/dev/null 2>&1; e=$(now)
      s2=$(now); "$kiln" batch --model "$dir/fraud" --input "$dir/rows.csv" --output "$dir/out-rows" >/dev/null 2>&1; e2=$(now)
    fi
    cpu=$(awk '{print ($1 + $2) * 1000}' "$dir/cpu")
    python3 -c "print('round $i $peer', round(($e - $s) * 1000), round($rows / ($e2 - $s2)), round($cpu))" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import sys, statistics as st
rounds = {}
for line in open(sys.argv[1]):
    _, i, peer, ms, rate, cpu = line.split()
    rounds.setdefault(int(i), {})[peer] = (int(ms), int(rate), int(cpu))
if all("base" in r for r in rounds.values()):
    ratios = [r["base"][0] / r["edge"][0] for r in rounds.values()]
    print("base kiln-score: start median %.0f ms, CPU %.0f ms, rows/s %s; start base/kiln-score per round: %s, median %.2fx" % (
        st.median(r["base"][0] for r in rounds.values()), st.median(r["base"][2] for r in rounds.values()),
        f"{st.median(r['base'][1] for r in rounds.values()):,.0f}", ", ".join("%.2f" % q for q in ratios), st.median(ratios)))
ms = {p: st.median(r[p][0] for r in rounds.values()) for p in ("edge", "batch")}
rate = {p: st.median(r[p][1] for r in rounds.values()) for p in ("edge", "batch")}
cpu = {p: st.median(r[p][2] for r in rounds.values()) for p in ("edge", "batch")}
print(f"start to first prediction (median ms): kiln-score {ms['edge']:.0f}, kiln batch {ms['batch']:.0f}; "
      f"median ratio {st.median(r['batch'][0] / r['edge'][0] for r in rounds.values()):.1f}x; "
      f"CPU time (user + system, median ms): kiln-score {cpu['edge']:.0f}, kiln batch {cpu['batch']:.0f}")
print(f"rows/s (median): kiln-score {rate['edge']:,.0f}, kiln batch {rate['batch']:,.0f}; "
      f"median ratio {st.median(r['edge'][1] / r['batch'][1] for r in rounds.values()):.2f}x")
PY
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
