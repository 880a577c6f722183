#!/usr/bin/env bash
# Quick A/B of one kiln serve configuration against the bare peer: both up, loaded in alternating,
# counterbalanced rounds (wrk -t1 -c32), the kiln/bare ratio per round and its median. Reuses the
# model and binaries bench/serving/run.sh left in bench/results/serving-work (run that first).
# usage: [ROUNDS=4] [SECS=8] [NOLOG=1] bench/serving/compare.sh [ENV=VALUE ...] [-- extra kiln serve args]
#   e.g. bench/serving/compare.sh DOTNET_gcServer=1        (NOLOG=1: no --log-dir)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
w="$root/bench/results/serving-work"
[[ -f "$w/bin/Kiln.Bench.Serving.dll" && -d "$w/rf" ]] || { echo "run bench/serving/run.sh first (it builds $w)" >&2; exit 2; }
envs=(); while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done; [[ $# -gt 0 ]] && shift
logdir="$(mktemp -d)"; log=(--log-dir "$logdir"); [[ -n "${NOLOG:-}" ]] && log=()
bp=$((19000 + RANDOM % 500)); kp=$((bp + 1))
dotnet "$w/bin/Kiln.Bench.Serving.dll" bare "$w/rf/model.zip" "$bp" >/dev/null 2>&1 & b=$!
env "${envs[@]}" "$root/out/cli/kiln" serve --model "$w/rf" --port "$kp" --grpc-port -1 --poll-interval 0 "${log[@]}" "$@" >"$logdir.kiln.txt" 2>&1 & k=$!
trap 'kill $b $k 2>/dev/null; wait $b $k 2>/dev/null; rm -rf "$logdir" "$logdir.kiln.txt"' EXIT
for p in $bp $kp; do
  for _ in $(seq 60); do curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"f0":0.1,"f1":0.2,"f2":0.3}' "http://127.0.0.1:$p/predict" && break; sleep 0.5; done
  wrk -t1 -c32 -d8s -s "$w/single.lua" "http://127.0.0.1:$p/predict" >/dev/null   # warm-up
done
ratios=()
for r in $(seq "${ROUNDS:-4}"); do
  order="$bp $kp"; (( r % 2 == 0 )) && order="$kp $bp"
  declare -A rps=()
  for p in $order; do rps[$p]=$(wrk -t1 -c32 -d"${SECS:-8}"s -s "$w/single.lua" "http://127.0.0.1:$p/predict" | awk '/Requests\/sec/ {print $2}'); done
  ratios+=("$(awk -v k="${rps[$kp]}" -v b="${rps[$bp]}" 'BEGIN {printf "%.3f", k/b}')")
  echo "round $r: bare ${rps[$bp]} req/s, kiln ${rps[$kp]} req/s, ratio ${ratios[-1]}"
done
echo "kiln RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$k/status")"
printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print "median kiln/bare " (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
