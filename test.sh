#!/usr/bin/env bash
# Runs every Kiln test. On a fresh machine with only the .NET SDK it first installs and starts
# what the tests need: PostgreSQL and Redis (Debian's packages, started on loopback ports of
# their own), Python's scipy/scikit-learn/pandas/onnx (numeric oracles), Chromium (the web UI's
# browser tests, driven by Playwright), Prometheus and Alertmanager, qemu-user with the arm64 C/C++
# runtimes (the arm64 edge scorer run on an emulated CPU), and the npm clients.
# Ends with one line: "tests: N passed, M failed[, K skipped]"; exits non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
state="$root/.test-services"
mkdir -p "$state"
log() { echo "test.sh: $*" >&2; }

# ---- system packages ---------------------------------------------------------------------
apt_packages=(postgresql redis-server python3-scipy python3-sklearn python3-pandas python3-onnx python3-hnswlib prometheus prometheus-alertmanager nodejs npm chromium qemu-user libc6-arm64-cross libstdc++6-arm64-cross wine64)
missing=()
for p in "${apt_packages[@]}"; do
  # nodejs/npm may come from elsewhere on the machine: only ask apt when the command is absent.
  case $p in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$state/apt.log" 2>&1 || true
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$state/apt.log" 2>&1; then
    tail -20 "$state/apt.log" >&2
    log "could not install ${missing[*]}"
    echo "tests: 0 passed, 1 failed"
    exit 1
  fi
fi

# ---- PostgreSQL: a cluster of our own on 127.0.0.1:55432, trust auth, as the postgres user ---
pg_port=55432
pg_version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h 2>/dev/null | awk '{print $2}' | grep -qx kilntest; then
  pg_createcluster "$pg_version" kilntest -p "$pg_port" -- --auth=trust >"$state/pg.log" 2>&1 \
    || { cat "$state/pg.log" >&2; log "pg_createcluster failed"; }
fi
pg_ctlcluster "$pg_version" kilntest start >>"$state/pg.log" 2>&1 || true
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p "$pg_port" -q && break
  sleep 0.5
done
export KILN_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres;Pooling=true"

# ---- Redis on 127.0.0.1:56379, in memory only ------------------------------------------------
redis_port=56379
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --logfile "$state/redis.log" >/dev/null
  for _ in $(seq 1 20); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.25; done
fi
export KILN_TEST_REDIS="127.0.0.1:$redis_port"

# ---- npm clients written by others (MLflow client, gRPC) and s3rver, the S3-protocol test server ----
if [[ -f tests/js/package.json ]]; then
  if [[ ! -d tests/js/node_modules ]] || [[ tests/js/package.json -nt tests/js/node_modules ]]; then
    log "npm install in tests/js"
    (cd tests/js && npm install --no-audit --no-fund --loglevel=error >"$state/npm.log" 2>&1) \
      || { tail -20 "$state/npm.log" >&2; log "npm install failed"; }
    touch tests/js/node_modules 2>/dev/null || true
  fi
fi

export KILN_REPO_ROOT="$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# ---- build and test ----------------------------------------------------------------------------
log "building"
if ! dotnet build Kiln.slnx -c Release -nologo -v quiet >"$state/build.log" 2>&1; then
  grep -E ': error ' "$state/build.log" | sort -u | head -40 >&2
  log "build failed (full log: $state/build.log)"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

results="$root/TestResults"
rm -rf "$results"
log "running tests"
dotnet test Kiln.slnx -c Release --no-build -nologo \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" \
  --blame-hang --blame-hang-timeout 15m "$@" 2>&1 | tee "$state/test.log" | grep -E '^\s+(Failed|Skipped) |Error Message|^\s+Assert|Passed!|Failed!' | head -200
test_rc=${PIPESTATUS[0]}

# Totals from every project's TRX file.
read -r passed failed skipped < <(python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
p = f = s = 0
for path in glob.glob(sys.argv[1] + "/**/*.trx", recursive=True):
    c = ET.parse(path).getroot().find(".//{*}ResultSummary/{*}Counters")
    if c is None: continue
    p += int(c.get("passed", 0)); f += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    s += int(c.get("notExecuted", 0))
print(p, f, s)
PY
)
if [[ $test_rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi   # a crashed test host counts as a failure
line="tests: $passed passed, $failed failed"
((skipped > 0)) && line="$line, $skipped skipped"
echo "$line"
[[ $failed -eq 0 && $passed -gt 0 ]]
