#!/usr/bin/env bash
# Quick A/B of kiln serve against the bare peer: all servers up, loaded in alternating, rotated
# rounds (wrk -t1 -c32), each kiln's ratio to the bare peer per round and the medians. Reuses the
# model and binaries bench/serving/run.sh left in bench/results/serving-work (run that first).
# usage: [ROUNDS=4] [SECS=8] [NOLOG=1] [BATCH=1] [BASE=DIR] bench/serving/compare.sh [ENV=VALUE ...] [-- extra kiln serve args]
#   BATCH=1: each request is run.sh's batch of 100 objects (the bare peer's /predict-batch) instead of one object.
#   ENV=VALUE and the extra args apply to out/cli's kiln (or KILN's); NOLOG=1: no --log-dir.
#   BASE=DIR adds a second kiln, DIR/kiln (another commit's CLI build, e.g.
#   `git worktree add /tmp/base REV && dotnet build /tmp/base/src/Kiln.Cli -c Release -o /tmp/base-cli`),
#   served the same way, so a change is measured against its base in the same rounds.
#   KILN=DIR serves DIR/kiln instead of out/cli/kiln (e.g. a plain `dotnet build -o DIR` of the change, to compare it
#   with a BASE built the same way: out/cli is a ReadyToRun publish).
# Besides req/s, each round prints each server's CPU time per request (user + system from /proc/PID/stat over the
# wrk run, divided by the requests wrk counted): on a loaded machine a server's req/s follows the CPU it was
# given, its CPU per request much less; "cpu ratio" is bare's CPU per request over kiln's (above 1: kiln cheaper).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
w="$root/bench/results/serving-work"
[[ -f "$w/bin/Kiln.Bench.Serving.dll" && -d "$w/rf" ]] || { echo "run bench/serving/run.sh first (it builds $w)" >&2; exit 2; }
envs=(); while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done; [[ $# -gt 0 ]] && shift
tmp="$(mktemp -d)"
# The wrk scripts are written here from this work directory's bodies (a copied work directory's own .lua files name
# the original's body files, and a body file that is gone makes wrk post nothing).
for b in single batch; do
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nlocal f = io.open("%s"); wrk.body = f:read("*a"); f:close()\n' "$w/$b.json" >"$tmp/$b.lua"
done
log() { [[ -z "${NOLOG:-}" ]] && { mkdir -p "$tmp/$1"; echo --log-dir "$tmp/$1"; }; true; }
bp=$((19000 + RANDOM % 500)); kp=$((bp + 1)); ap=$((bp + 2))
names=([$bp]=bare [$kp]=kiln [$ap]=base)
script=single; bare_path=/predict
[[ -n "${BATCH:-}" ]] && { script=batch; bare_path=/predict-batch; }
path() { [[ $1 == "$bp" ]] && echo "$bare_path" || echo /predict; }
dotnet "$w/bin/Kiln.Bench.Serving.dll" bare "$w/rf/model.zip" "$bp" >/dev/null 2>&1 & pids=($!)
# shellcheck disable=SC2046
env "${envs[@]}" "${KILN:-$root/out/cli}/kiln" serve --model "$w/rf" --port "$kp" --grpc-port -1 --poll-interval 0 $(log kiln) "$@" >"$tmp/kiln.txt" 2>&1 & pids+=($!); k=$!
ports=("$bp" "$kp")
if [[ -n "${BASE:-}" ]]; then
  # shellcheck disable=SC2046
  "$BASE/kiln" serve --model "$w/rf" --port "$ap" --grpc-port -1 --poll-interval 0 $(log base) >"$tmp/base.txt" 2>&1 & pids+=($!); a=$!
  ports+=("$ap")
fi
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
for p in "${ports[@]}"; do
  for _ in $(seq 60); do curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"f0":0.1,"f1":0.2,"f2":0.3}' "http://127.0.0.1:$p/predict" && break; sleep 0.5; done
  wrk -t1 -c32 -d8s -s "$tmp/single.lua" "http://127.0.0.1:$p/predict" >/dev/null   # warm-up
  [[ -n "${BATCH:-}" ]] && wrk -t1 -c32 -d3s -s "$tmp/batch.lua" "http://127.0.0.1:$p$(path "$p")" >/dev/null
done
declare -A ratios=() cpuratios=() pidof=([$bp]=${pids[0]} [$kp]=$k)
[[ -n "${BASE:-}" ]] && pidof[$ap]=$a
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
n=${#ports[@]}
for r in $(seq "${ROUNDS:-4}"); do
  # Rotate the order so each server runs first, second (and third) equally often.
  order=(); for i in $(seq 0 $((n - 1))); do order+=("${ports[$(((i + r) % n))]}"); done
  declare -A rps=() cpu=()
  for p in "${order[@]}"; do
    t0=$(ticks "${pidof[$p]}")
    out="$(wrk -t1 -c32 -d"${SECS:-8}"s -s "$tmp/$script.lua" "http://127.0.0.1:$p$(path "$p")")"
    t1=$(ticks "${pidof[$p]}")
    # A round with failed answers measures nothing: say so and stop.
    if grep -q 'Non-2xx' <<<"$out"; then echo "${names[$p]} answered errors in round $r:" >&2; echo "$out" >&2; exit 1; fi
    rps[$p]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    cpu[$p]=$(awk -v d=$((t1 - t0)) -v hz="$hz" '/requests in/ {printf "%.1f", d / hz * 1e6 / $1}' <<<"$out")
  done
  line="round $r: bare ${rps[$bp]} req/s ${cpu[$bp]} us cpu/req"
  for p in "${ports[@]:1}"; do
    q="$(awk -v k="${rps[$p]}" -v b="${rps[$bp]}" 'BEGIN {printf "%.3f", k/b}')"
    c="$(awk -v k="${cpu[$p]}" -v b="${cpu[$bp]}" 'BEGIN {printf "%.3f", b/k}')"
    ratios[$p]+="$q "
    cpuratios[$p]+="$c "
    line+=", ${names[$p]} ${rps[$p]} req/s ($q) ${cpu[$p]} us cpu/req ($c)"
  done
  echo "$line"
done
rss() { awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$1/status"; }
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS kiln $(rss "$k")${BASE:+, base $(rss "$a")}"
for p in "${ports[@]:1}"; do
  printf '%s\n' ${ratios[$p]} | sort -g | awk -v n="${names[$p]}" '{a[NR]=$1} END {print "median " n "/bare " (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
  printf '%s\n' ${cpuratios[$p]} | sort -g | awk -v n="${names[$p]}" '{a[NR]=$1} END {print "median cpu ratio bare/" n " " (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
done
