#!/usr/bin/env bash
# Does a Prometheus-style scrape of /metrics every second change single-row serving latency?
# One kiln serve (the quickstart's fraud model), an open-loop load at a fixed rate (Kiln.Bench.Serving's `rate`:
# latency from each request's scheduled start), in alternating rounds with and without a background loop that
# GETs /metrics once a second; p99 per round and the medians. Figures go to docs/benchmarks.md (## Serving).
# The scraper is, as Prometheus is, one long-lived process on a kept-alive connection (Kiln.Bench.Serving's
# `scrape`), started once before the rounds and warmed up, so it is there (idle) in the rounds without scrapes too:
# it scrapes only while a gate file exists, and the round reports its scrapes' count, median and slowest.
# SCRAPER=curl starts a curl process per scrape instead (the first version of this script).
# SCRAPER_SCHED=idle runs the kept-alive scraper under SCHED_IDLE (chrt --idle 0): it then gets only CPU time that
# nothing else wants, which stands in for a Prometheus on another machine; kiln serve's own handling of each scrape
# still runs at normal priority and is still counted.
# KILN=PATH runs another build of the CLI (e.g. a copy of out/cli/kiln made before a change) instead of ./kiln.
# usage: [ROUNDS=4] [SECS=15] [RATE=300] [SCRAPER=keepalive|curl] [SCRAPER_SCHED=idle] [KILN=PATH] bench/serving/scrape-impact.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bench="$root/bench/Kiln.Bench.Serving/bin/Release/net10.0/Kiln.Bench.Serving.dll"
[[ -f "$bench" ]] || dotnet build bench/Kiln.Bench.Serving -c Release -nologo -v quiet >/dev/null
tmp="$(mktemp -d)"
kiln="${KILN:-./kiln}"
"$kiln" train examples/quickstart/spec.yaml --out "$tmp/fraud" >/dev/null 2>&1
port=$((20000 + RANDOM % 500))
"$kiln" serve --model "$tmp/fraud" --port "$port" --grpc-port -1 --poll-interval 0 >"$tmp/serve.txt" 2>&1 &
serve=$!
loop=
trap 'kill $serve $loop $scraper 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
echo '{"amount": 668.56, "hour": 11, "merchant_category": "electronics", "card_present": "yes", "distance_from_home_km": 4.2, "customer_age": 76}' >"$tmp/body.json"
for _ in $(seq 120); do curl -fs -o /dev/null -H 'Content-Type: application/json' -d @"$tmp/body.json" "http://127.0.0.1:$port/predict" && break; sleep 0.5; done
url="http://127.0.0.1:$port/predict"
dotnet "$bench" rate "$url" "$tmp/body.json" "${RATE:-300}" 5 >/dev/null   # warm-up
scraper=
if [[ ${SCRAPER:-keepalive} != curl ]]; then
  sched=(); [[ ${SCRAPER_SCHED:-} == idle ]] && sched=(chrt --idle 0)
  "${sched[@]}" dotnet "$bench" scrape "http://127.0.0.1:$port/metrics" 1000 "$tmp/gate" >"$tmp/scrape.txt" & scraper=$!
  for _ in $(seq 120); do grep -q ready "$tmp/scrape.txt" 2>/dev/null && break; sleep 0.5; done
  # The scraper's own tiered JIT and the server's first scrapes settle before the first round.
  touch "$tmp/gate"; sleep 5; rm -f "$tmp/gate"; sleep 2
fi
p99() { awk '{for (i = 1; i <= NF; i++) if ($i ~ /^p99=/) { sub("p99=", "", $i); sub("ms", "", $i); print $i; exit }}'; }
without=(); with=()
for r in $(seq "${ROUNDS:-4}"); do
  for mode in $([[ $((r % 2)) -eq 1 ]] && echo "off on" || echo "on off"); do
    seen=$(wc -l <"$tmp/scrape.txt" 2>/dev/null || echo 0)
    if [[ $mode == on ]]; then
      if [[ ${SCRAPER:-keepalive} == curl ]]; then
        (while true; do curl -fs -o /dev/null "http://127.0.0.1:$port/metrics"; sleep 1; done) & loop=$!
      else
        touch "$tmp/gate"
      fi
    fi
    line=$(dotnet "$bench" rate "$url" "$tmp/body.json" "${RATE:-300}" "${SECS:-15}")
    scraped=
    if [[ $mode == on ]]; then
      if [[ -n $loop ]]; then kill $loop; wait $loop 2>/dev/null || true; loop=; fi
      rm -f "$tmp/gate"; sleep 1.2
      with+=("$(p99 <<<"$line")")
      [[ -n $scraper ]] && scraped=" ($(tail -n +$((seen + 1)) "$tmp/scrape.txt" | sort -g | awk '{a[NR] = $1} END {if (NR) printf "%d scrapes, median %.2f ms, slowest %.2f ms", NR, a[int((NR + 1) / 2)], a[NR]}'))"
    else
      without+=("$(p99 <<<"$line")")
    fi
    echo "round $r, scrape loop $mode: $line$scraped"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "p99 without the scrape loop: ${without[*]} ms (median $(median "${without[@]}"))"
echo "p99 with a scrape every second: ${with[*]} ms (median $(median "${with[@]}"))"
