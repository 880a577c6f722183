#!/usr/bin/env bash
# Serving benchmark: kiln serve (validation, metrics and prediction log on) against
#  (a) the seed article's FastAPI + scikit-learn server and (b) a bare ASP.NET minimal API with
#  pooled ML.NET PredictionEngines (bench/Kiln.Bench.Serving), all in one run on this machine.
# The model: a random forest of 100 trees (depth 10 in sklearn; FastForest with 1024 leaves in
# Kiln) on 20,000 rows of three float features. Needs: wrk, python3-sklearn, python3-fastapi,
# python3-uvicorn (apt-get install wrk python3-fastapi python3-uvicorn).
# usage: bench/serving/run.sh [SECONDS]      figures go to bench/results/serving-*.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
secs="${1:-10}"
work="$root/bench/results/serving-work"
out="$root/bench/results/serving-$(date -u +%Y%m%dT%H%M%SZ).txt"
rm -rf "$work"; mkdir -p "$work"
# Debian's python3 has the apt-installed sklearn/fastapi/uvicorn (a pyenv shim may shadow it).
py=python3; [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { echo "$*" | tee -a "$out"; }

# ---- data and models --------------------------------------------------------------------------
"$py" - "$work" <<'PY'
import sys, pickle
import numpy as np, pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
work = sys.argv[1]
X, y = make_classification(n_samples=20000, n_features=3, n_informative=3, n_redundant=0, random_state=42)
df = pd.DataFrame(X.astype(np.float32), columns=["f0", "f1", "f2"]); df["label"] = y
df.to_csv(f"{work}/train.csv", index=False)
model = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42, n_jobs=1).fit(X, y)
pickle.dump(model, open(f"{work}/model.pkl", "wb"))
PY
cat > "$work/spec.yaml" <<'YAML'
name: rf
task: binary
data: train.csv
label: label
features:
  f0: numeric
  f1: numeric
  f2: numeric
trainer:
  kind: fast_forest
  trees: 100
  leaves: 1024
holdout: 0.2
seed: 42
YAML
./kiln train "$work/spec.yaml" --out "$work/rf" >/dev/null
dotnet build bench/Kiln.Bench.Serving -c Release -nologo -v quiet -o "$work/bin" >/dev/null

# ---- the seed article's FastAPI server -----------------------------------------------------------
cat > "$work/seed_app.py" <<'PY'
import pickle
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel
model = pickle.load(open("model.pkl", "rb"))
app = FastAPI()
class Features(BaseModel):
    f0: float
    f1: float
    f2: float
@app.post("/predict")
def predict(x: Features):
    X = np.array([[x.f0, x.f1, x.f2]])
    return {"prediction": int(model.predict(X)[0]), "probability": float(model.predict_proba(X)[0, 1])}
PY

wait_up() { for _ in $(seq 1 120); do curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"f0":0.1,"f1":0.2,"f2":0.3}' "$1" && return 0; sleep 0.5; done; echo "not up: $1" >&2; return 1; }
rss() { awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$1/status"; }

single='{"f0": 0.12, "f1": -1.3, "f2": 0.7}'
batch="[$("$py" -c "print(','.join(['{\"f0\": %.3f, \"f1\": %.3f, \"f2\": %.3f}' % (i/100, -i/200, i/300) for i in range(100)]))")]"
echo "$single" > "$work/single.json"; echo "$batch" > "$work/batch.json"
lua() { cat > "$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$2"); wrk.body = f:read("*a"); f:close()
LUA
}
lua single "$work/single.json"; lua batch "$work/batch.json"

run_wrk() { # name url script
  local r; r="$(wrk -t1 -c32 -d"${secs}s" --latency -s "$work/$3.lua" "$2")"
  local rps; rps="$(echo "$r" | awk '/Requests\/sec/ {print $2}')"
  local p99; p99="$(echo "$r" | awk '$1=="99%" {print $2}')"
  local non2xx; non2xx="$(echo "$r" | awk '/Non-2xx/ {print $4}')"
  echo "$rps $p99 ${non2xx:-0}"
}

rounds="${ROUNDS:-6}"
say "# kiln serving benchmark $(date -u +%FT%TZ) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
say "# wrk -t1 -c32 -d${secs}s, one JSON object per request (batch: 100 objects); $rounds rounds, bare and kiln alternating"

# ---- bare peer and kiln serve: both up, measured in alternating rounds ---------------------------
# Both servers stay up and are loaded in turn (bare, kiln, bare, kiln, ...), so a slow minute of a
# shared machine falls on both; the idle one costs next to nothing. The ratio is taken per round.
declare -A url batch_url pid
port=$((18080 + RANDOM % 1000))
dotnet "$work/bin/Kiln.Bench.Serving.dll" bare "$work/rf/model.zip" "$port" & pids+=($!); pid[bare]=$!
url[bare]="http://127.0.0.1:$port/predict"; batch_url[bare]="http://127.0.0.1:$port/predict-batch"
port=$((port + 1))
"$root/out/cli/kiln" serve --model "$work/rf" --port "$port" --grpc-port -1 --log-dir "$work/log" --poll-interval 0 >"$work/kiln.log" 2>&1 & pids+=($!); pid[kiln]=$!
url[kiln]="http://127.0.0.1:$port/predict"; batch_url[kiln]="${url[kiln]}"
for system in bare kiln; do
  wait_up "${url[$system]}"
  # Warm-up: 10 s of load, so that both .NET servers are measured after tiered compilation has
  # recompiled their hot paths (2 s was not enough on 2 shared cores: req/s still rose after 10 s).
  wrk -t1 -c32 -d10s -s "$work/single.lua" "${url[$system]}" >/dev/null
  wrk -t1 -c32 -d3s -s "$work/batch.lua" "${batch_url[$system]}" >/dev/null
done
ratios=(); bratios=()
for round in $(seq 1 "$rounds"); do
  declare -A rps=() brps=()
  # Counterbalanced: bare first in odd rounds, kiln first in even ones, so neither always runs right after the other.
  order="bare kiln"; (( round % 2 == 0 )) && order="kiln bare"
  for system in $order; do
    read -r r p99 non2xx < <(run_wrk "$system" "${url[$system]}" single)
    rps[$system]=$r
    say "round $round $system single: $r req/s, wrk p99 $p99 (closed loop, 32 connections), non-2xx $non2xx"
  done
  for system in $order; do
    read -r r p99 non2xx < <(run_wrk "$system" "${batch_url[$system]}" batch)
    brps[$system]=$r
    say "round $round $system batch of 100: $r req/s = $(awk -v r="$r" 'BEGIN {printf "%.0f", r*100}') rows/s, wrk p99 $p99, non-2xx $non2xx"
  done
  ratios+=("$(awk -v k="${rps[kiln]}" -v b="${rps[bare]}" 'BEGIN {printf "%.3f", k/b}')")
  bratios+=("$(awk -v k="${brps[kiln]}" -v b="${brps[bare]}" 'BEGIN {printf "%.3f", k/b}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
say "kiln/bare single, per round: ${ratios[*]}; median $(median "${ratios[@]}")"
say "kiln/bare batch of 100, per round: ${bratios[*]}; median $(median "${bratios[@]}")"
for system in bare kiln; do say "$system RSS after load: $(rss "${pid[$system]}")"; done

# Fixed rate, open loop: the generator (one thread polling raw keep-alive sockets, RateGenerator.cs)
# gets core 0 to itself and the server core 1 (taskset), so it sends on schedule and timestamps
# answers as they arrive without taking CPU from the server it measures.
for system in bare kiln; do
  if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
    taskset -a -p -c 1 "${pid[$system]}" >/dev/null
    rate="$(taskset -c 0 dotnet "$work/bin/Kiln.Bench.Serving.dll" rate "${url[$system]}" "$work/single.json" 2000 "$secs" spin)"
    taskset -a -p -c "0-$(( $(nproc) - 1 ))" "${pid[$system]}" >/dev/null
    say "$system fixed rate (generator on core 0, server on core 1): $rate"
  else
    rate="$(dotnet "$work/bin/Kiln.Bench.Serving.dll" rate "${url[$system]}" "$work/single.json" 2000 "$secs")"
    say "$system fixed rate (generator and server share the cores): $rate"
  fi
done
kill "${pid[bare]}" "${pid[kiln]}"; wait "${pid[bare]}" "${pid[kiln]}" 2>/dev/null || true

# ---- the seed article's FastAPI server -------------------------------------------------------------
port=$((port + 1))
(cd "$work" && exec "$py" -m uvicorn seed_app:app --host 127.0.0.1 --port "$port" --log-level warning) & pids+=($!)
seed_pid=$!
seed_url="http://127.0.0.1:$port/predict"
wait_up "$seed_url"
wrk -t1 -c32 -d2s -s "$work/single.lua" "$seed_url" >/dev/null
read -r r p99 non2xx < <(run_wrk seed "$seed_url" single)
say "seed single: $r req/s, wrk p99 $p99 (closed loop, 32 connections), non-2xx $non2xx, RSS after load $(rss "$seed_pid")"
rate="$(dotnet "$work/bin/Kiln.Bench.Serving.dll" rate "$seed_url" "$work/single.json" 30 "$secs" || true)"
say "seed fixed rate (30/s, it cannot sustain 2,000/s): $rate"
kill "$seed_pid"; wait "$seed_pid" 2>/dev/null || true
say "# prediction log rows written by kiln: $(find "$work/log" -name '*.parquet' | wc -l) files"
echo "results: $out"
